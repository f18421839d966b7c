//! `AdminAudit`: the one Durable Object (named `admin-audit`) holding the admin ledger in
//! SQLite: the audit of state-changing admin requests (see
//! `ghplane_core::admin_access::audit`), which user id each configured login was first
//! signed in as, and team membership answers (see `ghplane_core::admin_access::roles`).
//!
//! One object, not shards: admin writes are made by people and automation, a few a minute at
//! most; an entry is two small SQLite writes. Entries older than
//! `ADMIN_AUDIT_RETENTION_DAYS` (default 400) are deleted by a daily alarm.
//!
//! A leaf module (ghplane_core, `rpc`, `settings`, std, serde, worker only): the route layer
//! uses its client.

use std::cell::Cell;

use ghplane_core::admin_access::audit::{
    retention_cutoff_ms, retention_days, AccessState, ActorFilter, AuditCommand, AuditEntry,
    AuditPage, AuditQuery, AuditView, MAX_PAGE, OBJECT_NAME,
};
use ghplane_core::admin_access::roles::{CachedMembership, LoginBinding};
use ghplane_core::ApiError;
use serde::Deserialize;
use worker::{durable_object, Env, Request, Response, SqlStorage, SqlStorageValue, State};

use crate::clock::now_ms;
use crate::objects::rpc::{self, Object};
use crate::objects::trim::TRIM_EVERY_MS;
use crate::settings;

#[durable_object]
pub struct AdminAudit {
    state: State,
    env: Env,
    ready: Cell<bool>,
    alarm_armed: Cell<bool>,
}

impl worker::DurableObject for AdminAudit {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            ready: Cell::new(false),
            alarm_armed: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |_, command| async move {
            match command {
                AuditCommand::Begin { entry } => rpc::reply(&self.begin(&entry).await?),
                AuditCommand::Finish { seq, status } => rpc::reply(&self.finish(seq, status)?),
                AuditCommand::List { query } => rpc::reply(&self.list(&query)?),
                AuditCommand::Access { logins, user_id } => {
                    rpc::reply(&self.access(&logins, user_id)?)
                }
                AuditCommand::Remember { bind, memberships } => {
                    rpc::reply(&self.remember(&bind, &memberships)?)
                }
            }
        })
        .await
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.trim() {
            crate::log::event(
                "error",
                "admin audit trim failed",
                serde_json::json!({"errorCode": e.code()}),
            );
        }
        let _ = self.state.storage().set_alarm(TRIM_EVERY_MS).await;
        Response::ok("")
    }
}

impl AdminAudit {
    fn sql(&self) -> Result<SqlStorage, ApiError> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            for statement in [
                "CREATE TABLE IF NOT EXISTS admin_audit (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
                    actor TEXT NOT NULL, actor_id INTEGER, targets TEXT NOT NULL,
                    status INTEGER, entry TEXT NOT NULL)",
                "CREATE INDEX IF NOT EXISTS admin_audit_by_actor ON admin_audit (actor, seq)",
                "CREATE INDEX IF NOT EXISTS admin_audit_by_time ON admin_audit (at_ms)",
                "CREATE TABLE IF NOT EXISTS login_bindings (
                    login TEXT PRIMARY KEY, user_id INTEGER NOT NULL, bound_at_ms INTEGER NOT NULL)",
                "CREATE TABLE IF NOT EXISTS team_memberships (
                    team TEXT NOT NULL, user_id INTEGER NOT NULL, member INTEGER NOT NULL,
                    checked_at_ms INTEGER NOT NULL, PRIMARY KEY (team, user_id))",
            ] {
                sql.exec(statement, None).map_err(|e| fail!(e))?;
            }
            self.ready.set(true);
        }
        Ok(sql)
    }

    async fn begin(&self, entry: &AuditEntry) -> Result<i64, ApiError> {
        #[derive(Deserialize)]
        struct Seq {
            seq: f64,
        }
        let text = serde_json::to_string(entry).map_err(|e| fail!(e))?;
        let sql = self.sql()?;
        let rows: Vec<Seq> = sql
            .exec(
                "INSERT INTO admin_audit (at_ms, actor, actor_id, targets, entry)
                 VALUES (?, ?, ?, ?, ?) RETURNING seq",
                vec![
                    now_ms().into(),
                    entry.actor_key().into(),
                    entry
                        .actor
                        .id
                        .map_or(SqlStorageValue::Null, |id| (id as i64).into()),
                    entry.target_index().into(),
                    text.into(),
                ],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        let seq = rows.first().map(|r| r.seq as i64).ok_or_else(|| fail!())?;
        crate::objects::trim::arm(&self.state, &self.alarm_armed).await?;
        Ok(seq)
    }

    fn finish(&self, seq: i64, status: u16) -> Result<(), ApiError> {
        self.sql()?
            .exec(
                "UPDATE admin_audit SET status = ? WHERE seq = ?",
                vec![i64::from(status).into(), seq.into()],
            )
            .map(|_| ())
            .map_err(|e| fail!(e))
    }

    fn list(&self, q: &AuditQuery) -> Result<AuditPage, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            seq: f64,
            at_ms: f64,
            status: Option<f64>,
            entry: String,
        }
        let mut clauses = vec!["seq < ?".to_owned()];
        let mut args: Vec<SqlStorageValue> = vec![q.before.unwrap_or(i64::MAX / 2).into()];
        match &q.actor {
            Some(ActorFilter::Token) => {
                clauses.push("actor = 'token'".into());
            }
            Some(ActorFilter::Login(login)) => {
                clauses.push("actor = ?".into());
                args.push(login.as_str().into());
            }
            Some(ActorFilter::UserId(id)) => {
                clauses.push("actor_id = ?".into());
                args.push((*id as i64).into());
            }
            None => {}
        }
        if let Some(t) = &q.target {
            clauses.push("instr(targets, ?) > 0".into());
            args.push(format!("|{t}|").into());
        }
        if let Some(since) = q.since_ms {
            clauses.push("at_ms >= ?".into());
            args.push(since.into());
        }
        let limit = q.limit.clamp(1, MAX_PAGE);
        args.push(i64::from(limit + 1).into());
        let rows: Vec<Row> = self
            .sql()?
            .exec(
                &format!(
                    "SELECT seq, at_ms, status, entry FROM admin_audit WHERE {}
                     ORDER BY seq DESC LIMIT ?",
                    clauses.join(" AND ")
                ),
                args,
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next_cursor = match (more, rows.last()) {
            (true, Some(last)) => Some((last.seq as i64).to_string()),
            _ => None,
        };
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            let entry: AuditEntry = serde_json::from_str(&r.entry).map_err(|e| fail!(e))?;
            entries.push(AuditView::new(
                r.seq as i64,
                r.at_ms as i64,
                entry,
                r.status.map(|s| s as u16),
            ));
        }
        Ok(AuditPage {
            entries,
            next_cursor,
        })
    }

    fn access(&self, logins: &[String], user_id: u64) -> Result<AccessState, ApiError> {
        #[derive(Deserialize)]
        struct Binding {
            login: String,
            user_id: f64,
        }
        #[derive(Deserialize)]
        struct Member {
            team: String,
            member: f64,
            checked_at_ms: f64,
        }
        let sql = self.sql()?;
        let mut bindings = Vec::new();
        for login in logins {
            let rows: Vec<Binding> = sql
                .exec(
                    "SELECT login, user_id FROM login_bindings WHERE login = ?",
                    vec![login.as_str().into()],
                )
                .and_then(|c| c.to_array())
                .map_err(|e| fail!(e))?;
            bindings.extend(rows.into_iter().map(|b| LoginBinding {
                login: b.login,
                user_id: b.user_id as u64,
            }));
        }
        let members: Vec<Member> = sql
            .exec(
                "SELECT team, member, checked_at_ms FROM team_memberships WHERE user_id = ?",
                vec![(user_id as i64).into()],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        Ok(AccessState {
            bindings,
            memberships: members
                .into_iter()
                .map(|m| CachedMembership {
                    team: m.team,
                    user_id,
                    member: m.member != 0.0,
                    checked_at_ms: m.checked_at_ms as i64,
                })
                .collect(),
        })
    }

    fn remember(
        &self,
        bind: &[LoginBinding],
        memberships: &[CachedMembership],
    ) -> Result<(), ApiError> {
        let sql = self.sql()?;
        for b in bind {
            // The first binding of a login stays: that is what makes a rename harmless.
            sql.exec(
                "INSERT OR IGNORE INTO login_bindings (login, user_id, bound_at_ms) VALUES (?, ?, ?)",
                vec![b.login.as_str().into(), (b.user_id as i64).into(), now_ms().into()],
            )
            .map_err(|e| fail!(e))?;
        }
        for m in memberships {
            sql.exec(
                "INSERT INTO team_memberships (team, user_id, member, checked_at_ms) VALUES (?, ?, ?, ?)
                 ON CONFLICT(team, user_id) DO UPDATE SET member = excluded.member,
                 checked_at_ms = excluded.checked_at_ms",
                vec![
                    m.team.as_str().into(),
                    (m.user_id as i64).into(),
                    i64::from(m.member).into(),
                    m.checked_at_ms.into(),
                ],
            )
            .map_err(|e| fail!(e))?;
        }
        Ok(())
    }

    fn trim(&self) -> Result<(), ApiError> {
        let days = retention_days(
            settings::get(&self.env, settings::ADMIN_AUDIT_RETENTION_DAYS).as_deref(),
        )
        .ok_or(ApiError::Misconfigured(
            settings::ADMIN_AUDIT_RETENTION_DAYS.into(),
        ))?;
        let sql = self.sql()?;
        sql.exec(
            "DELETE FROM admin_audit WHERE at_ms < ?",
            vec![retention_cutoff_ms(now_ms(), days).into()],
        )
        .map_err(|e| fail!(e))?;
        // Membership answers older than a day are of no use to any cache setting.
        sql.exec(
            "DELETE FROM team_memberships WHERE checked_at_ms < ?",
            vec![(now_ms() - TRIM_EVERY_MS).into()],
        )
        .map(|_| ())
        .map_err(|e| fail!(e))
    }
}

/// The handle on the admin ledger.
pub struct AdminAuditClient {
    object: Object,
}

impl AdminAuditClient {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        Ok(Self {
            object: Object::new(env, settings::ADMIN_AUDIT, OBJECT_NAME)?,
        })
    }

    /// Records `entry` (no status yet); its sequence number.
    pub async fn begin(&self, entry: AuditEntry) -> Result<i64, ApiError> {
        self.object.call(&AuditCommand::Begin { entry }).await
    }

    pub async fn finish(&self, seq: i64, status: u16) -> Result<(), ApiError> {
        self.object
            .call(&AuditCommand::Finish { seq, status })
            .await
    }

    pub async fn list(&self, query: AuditQuery) -> Result<AuditPage, ApiError> {
        self.object.call(&AuditCommand::List { query }).await
    }

    pub async fn access(&self, logins: Vec<String>, user_id: u64) -> Result<AccessState, ApiError> {
        self.object
            .call(&AuditCommand::Access { logins, user_id })
            .await
    }

    pub async fn remember(
        &self,
        bind: Vec<LoginBinding>,
        memberships: Vec<CachedMembership>,
    ) -> Result<(), ApiError> {
        self.object
            .call(&AuditCommand::Remember { bind, memberships })
            .await
    }
}
