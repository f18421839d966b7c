// Svelte 5 in runes mode everywhere; no preprocessor beyond TypeScript (handled by Svelte 5).
export default {
  compilerOptions: { runes: true },
};
