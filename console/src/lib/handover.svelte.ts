// A secret ghplane shows once (a project's deploy hook secret, answered only by the first
// link of its source): handed from the New Project form to the project's page in memory,
// never in storage or the URL, and dropped as soon as that page has taken it.
export const handover = $state<{ slug: string | null; hookSecret: string | null }>({
  slug: null,
  hookSecret: null,
});

/** The hook secret for `slug`, once: the next call answers null. */
export function takeHookSecret(slug: string): string | null {
  const secret = handover.slug === slug ? handover.hookSecret : null;
  handover.slug = null;
  handover.hookSecret = null;
  return secret;
}
