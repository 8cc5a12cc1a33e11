// Types for the vendored highlight.js build, for the dashboard's checkJs type check
// (tsconfig.dashboard.json): only what syntax.js uses. Written here, not vendored.
declare const hljs: {
  configure(options: { ignoreUnescapedHTML?: boolean }): void;
  getLanguage(name: string): object | undefined;
  highlight(code: string, options: { language: string; ignoreIllegals?: boolean }): { value: string };
};
export default hljs;
