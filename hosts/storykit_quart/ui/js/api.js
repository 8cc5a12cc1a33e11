// The HTTP client: the key in the X-API-Key header, problem+json errors as ApiError,
// and a polite wait-and-retry when the server says 429 (Retry-After).

export class ApiError extends Error {
  constructor(status, title, detail, body = null) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail || title;
    this.body = body;
  }
}

const MAX_RETRY_WAIT = 10;

export class Api {
  /**
   * @param {object} options
   * @param {string} options.base  origin (and path prefix) of the storykit server
   * @param {() => string|null} options.key
   * @param {(err: ApiError) => void} [options.onUnauthorized]
   * @param {(head: number) => void} [options.onSnapshot]  called with each list's `head`
   */
  constructor({ base, key, onUnauthorized, onSnapshot }) {
    this.base = base.replace(/\/+$/, "");
    this.key = key;
    this.onUnauthorized = onUnauthorized || (() => {});
    this.onSnapshot = onSnapshot || (() => {});
  }

  /** A list page: its `head` (the newest event id when it was read) goes to onSnapshot. */
  async list(path, query) {
    const page = await this.get(path, query);
    if (page && typeof page.head === "number") this.onSnapshot(page.head);
    return page;
  }

  url(path, query) {
    const url = new URL(this.base + path);
    for (const [name, value] of Object.entries(query || {})) {
      if (value === null || value === undefined || value === "") continue;
      url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{ query?: Record<string, unknown>, body?: unknown, retries?: number, signal?: AbortSignal }} [options]
   */
  async request(method, path, { query, body, retries = 3, signal } = {}) {
    const headers = { Accept: "application/json" };
    const key = this.key();
    if (key) headers["X-API-Key"] = key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.url(path, query), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "Server unreachable", `Cannot reach the storykit server at ${this.base}.`);
    }
    if (response.status === 429 && retries > 0) {
      const wait = Math.min(Number(response.headers.get("Retry-After")) || 1, MAX_RETRY_WAIT);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      return this.request(method, path, { query, body, retries: retries - 1, signal });
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const error = new ApiError(
        response.status,
        (data && data.title) || response.statusText || "Error",
        (data && data.detail) || `The server answered ${response.status}.`,
        data,
      );
      if (response.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return data;
  }

  get(path, query) {
    return this.request("GET", path, { query });
  }

  post(path, body) {
    return this.request("POST", path, { body: body ?? {} });
  }

  put(path, body) {
    return this.request("PUT", path, { body });
  }

  // -- the routes the dashboard uses ------------------------------------------
  health() {
    return this.get("/health");
  }
  plugins() {
    return this.get("/plugins");
  }
  suggestions(filters = {}, after = null, limit = 100) {
    return this.list("/suggestions", { ...filters, after, limit });
  }
  suggestion(id) {
    return this.get(`/suggestions/${encodeURIComponent(id)}`);
  }
  /**
   * @param {string} id
   * @param {"approve"|"revise"|"reject"} action
   * @param {string} [comment]
   * @param {Array<{file: string, line: number, side: "old"|"new", body: string}>} [comments]
   */
  review(id, action, comment = "", comments = []) {
    return this.post("/suggest/review", { id, action, comment, comments });
  }
  /**
   * One decision on several suggestions; each item's outcome comes back on its own.
   * @param {string[]} ids
   * @param {"approve"|"revise"|"reject"} action
   * @param {string} [comment]
   */
  reviewBulk(ids, action, comment = "") {
    return this.post("/suggest/review/bulk", { ids, action, comment });
  }
  /** @param {string} id */
  revisions(id) {
    return this.get(`/suggestions/${encodeURIComponent(id)}/revisions`);
  }
  /**
   * What changed from revision `from` to revision `to` (a unified diff).
   * @param {string} id
   * @param {number} from
   * @param {number} to
   */
  interdiff(id, from, to) {
    return this.get(`/suggestions/${encodeURIComponent(id)}/interdiff`, { from, to });
  }
  generate(sources, paths) {
    return this.post("/suggest/generate", { sources: sources.length ? sources : null, paths });
  }
  refine(id, instructions) {
    return this.post("/suggest/llm", { id, instructions });
  }
  plans(after = null, limit = 100) {
    return this.list("/plans", { after, limit });
  }
  plan(id) {
    return this.get(`/plans/${encodeURIComponent(id)}`);
  }
  createPlan(goal, suggestionIds) {
    return this.post("/plan", { goal, suggestion_ids: suggestionIds });
  }
  select(planId, variant) {
    return this.post(`/plans/${encodeURIComponent(planId)}/select`, { variant });
  }
  openPr(planId, variant, dryRun, branch = null) {
    return this.post("/dev/pr-from-plan", { plan_id: planId, variant, dry_run: dryRun, branch });
  }
  policies() {
    return this.get("/policies");
  }
  savePolicies(document) {
    return this.put("/policies", document);
  }
  checkPolicy(diff, title = "") {
    return this.post("/policies/check", { diff, title });
  }
  eventLog(after, limit = 500) {
    return this.get("/events/log", { after, limit });
  }
  ticket() {
    return this.post("/events/ticket", {});
  }
}
