// Hash routing (`/#/orgs`): the console's screens never collide with the worker's own paths
// (`/projects` is an API route), and the worker serves the page only at `/`.
class Route {
  path = $state(location.hash.replace(/^#/, "") || "/orgs");

  constructor() {
    window.addEventListener("hashchange", () => {
      this.path = location.hash.replace(/^#/, "") || "/orgs";
    });
  }

  /** The segments after the screen name: `/projects/p-1` → ["p-1"]. */
  get params(): string[] {
    return this.path.split("/").slice(2).map(decodeURIComponent);
  }

  get screen(): string {
    return this.path.split("/")[1] ?? "orgs";
  }
}

export const route = new Route();
