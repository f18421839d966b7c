#!/usr/bin/env bash
# The console's contract with the worker, shown by a test: the console's type check must FAIL
# when a route it uses changes shape. A temporary copy of console/ is checked twice against
# types generated (openapi-typescript) from crates/core/src/openapi/openapi.json:
#   1. as it is: svelte-check passes (the copy and the harness are sound);
#   2. with two shape changes to routes the console uses: a response field it reads renamed
#      (UserInstallations.install_url, GET /api/integrations/github/installations, read by
#      Organisations.svelte) and a required request field renamed (ProjectSourceInput.repoId,
#      PUT /projects/{slug}/source, sent by Projects.svelte): svelte-check fails, naming both.
# Offline and from the clone: only the repository's node_modules. `make console-contract` (in `make lint`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
openapi="$root/crates/core/src/openapi/openapi.json"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/console"
# The sources and configs, not the build output; dependencies resolve through the clone's.
(cd "$root/console" && tar cf - --exclude=./dist --exclude=./src/lib/schema.d.ts .) | (cd "$tmp/console" && tar xf -)
ln -s "$root/node_modules" "$tmp/node_modules"

check() { # $1: the OpenAPI document to type the console with; output in $tmp/out
  (cd "$root" && npx openapi-typescript "$1" -o "$tmp/console/src/lib/schema.d.ts" --silent >/dev/null)
  (cd "$tmp/console" && npx svelte-check --tsconfig ./tsconfig.json --fail-on-warnings --output machine) >"$tmp/out" 2>&1
}

if ! check "$openapi"; then
  cat "$tmp/out"
  echo "console contract test: the unchanged OpenAPI document does not type-check (harness broken?)" >&2
  exit 1
fi

node -e '
const fs = require("fs");
const [from, to] = process.argv.slice(1);
const doc = JSON.parse(fs.readFileSync(from, "utf8"));
const rename = (schema, before, after) => {
  const s = doc.components.schemas[schema];
  if (!s || !s.properties[before]) throw new Error(`${schema}.${before} is gone: update this test`);
  s.properties[after] = s.properties[before];
  delete s.properties[before];
  s.required = (s.required || []).map((r) => (r === before ? after : r));
};
rename("UserInstallations", "install_url", "installUrl");
rename("ProjectSourceInput", "repoId", "repositoryId");
fs.writeFileSync(to, JSON.stringify(doc));
' "$openapi" "$tmp/changed.json"

if check "$tmp/changed.json"; then
  echo "console contract test: the console still type-checks after routes it uses changed shape" >&2
  exit 1
fi
missing=0
for expected in "Organisations.svelte.*install_url" "Projects.svelte.*repoId"; do
  if ! grep -Eq "ERROR.*$expected" "$tmp/out"; then
    echo "console contract test: no type error matching /$expected/" >&2
    missing=1
  fi
done
if [ "$missing" = 1 ]; then
  cat "$tmp/out" >&2
  exit 1
fi
echo "console contract test: a changed route shape fails the console's type check ($(grep -c ERROR "$tmp/out") errors)"
