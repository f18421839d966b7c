// The Worker's entry module: the Rust build (worker-build → build/index.js) as it is, with
// each Durable Object class wrapped in a `DurableObject` subclass so the worker can call it
// over Workers RPC. A `fetch` into an object costs the runtime an HTTP round trip (measured
// at ~3.5 ms of CPU on workerd, against ~0.2 ms for an RPC call); `ghplaneCall` carries the
// same request (method, URL, headers, JSON body) to the object's Rust `fetch` handler and
// brings back status, headers and body, so the Rust side keeps one request/response shape.
import { DurableObject } from "cloudflare:workers";
import * as rust from "../build/index.js";

export default rust.default;

function callable(Inner) {
  return class extends DurableObject {
    constructor(ctx, env) {
      super(ctx, env);
      this.inner = new Inner(ctx, env);
    }

    fetch(request) {
      return this.inner.fetch(request);
    }

    alarm(info) {
      return this.inner.alarm(info);
    }

    async ghplaneCall(method, url, headers, body) {
      const response = await this.inner.fetch(new Request(url, { method, headers, body }));
      return {
        status: response.status,
        headers: [...response.headers],
        body: await response.arrayBuffer(),
      };
    }
  };
}

export const AppDirectory = callable(rust.AppDirectory);
export const AppStore = callable(rust.AppStore);
export const ClaimStore = callable(rust.ClaimStore);
export const GithubUserStore = callable(rust.GithubUserStore);
export const InstallationStore = callable(rust.InstallationStore);
export const InstallerStore = callable(rust.InstallerStore);
export const MintApp = callable(rust.MintApp);
export const MintAudit = callable(rust.MintAudit);
export const AdminAudit = callable(rust.AdminAudit);
export const MintKeys = callable(rust.MintKeys);
export const OAuthStateStore = callable(rust.OAuthStateStore);
export const ProjectDeploy = callable(rust.ProjectDeploy);
export const ProjectIndex = callable(rust.ProjectIndex);
export const ProjectStore = callable(rust.ProjectStore);
export const RepoIndex = callable(rust.RepoIndex);
