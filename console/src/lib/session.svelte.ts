// Who is signed in, shared by every screen. Loaded from GET /api/integrations/github/status,
// which answers `connected: false` rather than an error when there is no session.
import { api, classify, unreachable, type Failure, type Schemas } from "./api";

type Status = Schemas["ConnectStatus"];

class Session {
  status = $state<Status | null>(null);
  failure = $state<Failure | null>(null);
  loading = $state(false);

  async load() {
    this.loading = true;
    this.failure = null;
    try {
      const { data, error, response } = await api.GET("/api/integrations/github/status");
      if (data) this.status = data;
      else this.failure = classify(response.status, error);
    } catch (e) {
      this.failure = unreachable(e);
    } finally {
      this.loading = false;
    }
  }

  /** Starts GitHub's sign-in: the worker binds it to this browser with a cookie. */
  async signIn(returnTo = "/") {
    const { data, error, response } = await api.POST("/api/integrations/github/start", {
      body: { return_to: returnTo },
    });
    if (data) window.location.assign(data.authorize_url);
    else this.failure = classify(response.status, error);
  }

  async signOut() {
    const { error, response } = await api.POST("/api/integrations/github/disconnect", {
      body: {},
    });
    if (error) this.failure = classify(response.status, error);
    this.status = { connected: false };
  }
}

export const session = new Session();
