// The console's only way to the worker: a client typed from the worker's own OpenAPI document
// (`schema.d.ts` is generated from crates/core/src/openapi/openapi.json by `make console`), so a
// route that changes shape breaks `svelte-check` in `make test` instead of the page at run time.
// Same origin: the session cookie (HttpOnly) rides along; the console never holds a credential.
import createClient from "openapi-fetch";
import type { paths, components } from "./schema";

export type Schemas = components["schemas"];

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });

// A write authenticated by the session cookie must say it is JSON, body or not
// (docs/admin-access.md: browser writes), so no HTML form could have sent it.
api.use({
  onRequest({ request }) {
    if (request.method !== "GET" && !request.headers.has("content-type")) {
      request.headers.set("content-type", "application/json");
    }
    return request;
  },
});

/** What the person can do about a failure, shown differently on every screen. */
export type Failure =
  | { kind: "transient"; message: string; retryAfter?: number }
  | { kind: "session"; message: string }
  | { kind: "permissions"; message: string }
  | { kind: "other"; message: string; code: string };

type ErrorBody = { error?: { code?: string; message?: string; retry_after?: number } };

/** Classifies a failed call by its stable `error.code` (docs/admin-access.md: error classes). */
export function classify(status: number, body: unknown): Failure {
  const error = (body as ErrorBody | undefined)?.error ?? {};
  const code = error.code ?? "";
  const message = error.message ?? `The worker answered ${status}.`;
  if (code === "session_invalid" || code === "unauthorized" || status === 401) {
    return { kind: "session", message: "Your GitHub session has ended. Sign in again." };
  }
  if (code === "missing_permissions" || code === "forbidden" || status === 403) {
    return { kind: "permissions", message };
  }
  if (code === "transient" || code === "service_unavailable" || status === 503 || status === 0) {
    return { kind: "transient", message, retryAfter: error.retry_after };
  }
  return { kind: "other", message, code };
}

/** A call that threw (network down, worker unreachable) is transient. */
export function unreachable(e: unknown): Failure {
  return {
    kind: "transient",
    message: e instanceof Error ? e.message : "The worker could not be reached.",
  };
}
