// The mint's floor: what any mint must do on a warm path, and nothing else. It answers every
// request with the one GitHub call a warm mint makes (the token POST to the fake GitHub), so
// `make bench` can tell the runtime's cost of that call from ghplane's own work.
export default {
  async fetch(request, env) {
    const response = await fetch(`${env.GITHUB_API_BASE}/app/installations/${env.INSTALLATION_ID}/access_tokens`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer floor" },
      body: JSON.stringify({ permissions: { contents: "read" }, repositories: [env.REPO] }),
    });
    return new Response(await response.arrayBuffer(), {
      status: response.status === 201 ? 200 : 502,
      headers: { "content-type": "application/json", "cache-control": "no-store" },
    });
  },
};
