// The live connection: an EventSource on /events, opened with a single-use ticket.
//
// Tickets are single-use, so the browser's own reconnect (same URL) cannot work: on
// any error the stream is closed and reopened here with a fresh ticket and
// `last_event_id`, so the server replays what was missed. After a reconnect the
// missed events are also read from /events/log (they feed the activity list and say
// how many were missed) and the views re-fetch what they show ("resync"), so the
// screen is never stale. A `gap` event (the server dropped events for this
// connection) is recovered from the log the same way.
//
// States: connecting → live; on loss: reconnecting (→ offline after a few failed
// attempts; retries continue) → resumed (for a few seconds) → live.

const DELAYS = [250, 500, 1000, 2000, 4000];
const MAX_DELAY = 5000;
const OFFLINE_AFTER = 5;
const RESUMED_FOR = 5000;
const LOG_PAGE = 500;
const SEEN_MAX = 5000;

export class Live extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.state = "idle";
    this.detail = "";
    this.lastEventId = null;
    this.reconnects = 0;
    this.missed = 0;
    this._seen = new Set();
    this._source = null;
    this._timer = null;
    this._failures = 0;
    this._everConnected = false;
    this._stopped = true;
    this._onOnline = () => this._retryNow();
    this._onOffline = () => {
      this._closeSource();
      this._setState("offline", "Your device is offline");
      this._schedule();
    };
  }

  start() {
    if (!this._stopped) return;
    this._stopped = false;
    window.addEventListener("online", this._onOnline);
    window.addEventListener("offline", this._onOffline);
    this._setState("connecting", "Connecting…");
    this._connect();
  }

  stop(reason = "Not connected") {
    this._stopped = true;
    window.removeEventListener("online", this._onOnline);
    window.removeEventListener("offline", this._onOffline);
    clearTimeout(this._timer);
    this._closeSource();
    this._setState("offline", reason);
  }

  /** Reconnect now instead of waiting for the next scheduled attempt. */
  _retryNow() {
    if (this._stopped) return;
    clearTimeout(this._timer);
    this._closeSource();
    this._connect();
  }

  async _connect() {
    if (this._stopped) return;
    let ticket;
    try {
      ({ ticket } = await this.api.ticket());
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        this.stop(err.detail);
        return;
      }
      this._failed(err.detail);
      return;
    }
    if (this._stopped) return;
    this._resumeFrom = this.lastEventId;
    this._arrived = [];
    const url = this.api.url("/events", { ticket, last_event_id: this.lastEventId });
    const source = new EventSource(url);
    this._source = source;
    source.onopen = () => this._opened(source);
    source.onmessage = (message) => this._message(message);
    source.addEventListener("gap", (message) => this._gap(message));
    source.onerror = () => {
      if (this._source !== source) return;
      this._closeSource();
      this._failed("The live connection was lost");
    };
  }

  async _opened(source) {
    if (this._source !== source) return;
    this._failures = 0;
    const resumed = this._everConnected;
    this._everConnected = true;
    if (!resumed) {
      this._arrived = null;
      this._setState("live", "Live");
      return;
    }
    this.reconnects += 1;
    // Missed events arrive twice over (the server replays them after last_event_id,
    // and the log is read here); count each id once, up to the log's end.
    const from = this._resumeFrom;
    let missed = null;
    let head = null;
    if (from !== null) {
      try {
        head = await this._readLog(from, Infinity);
        missed = (this._arrived || []).filter((id) => id > from && id <= head).length;
      } catch {
        /* the resync below still brings every view up to date */
      }
    }
    this._arrived = null;
    if (this._source !== source) return;
    this.missed += missed || 0;
    const caught = missed === null ? "refreshed"
      : `caught up ${missed === 1 ? "1 missed event" : `${missed} missed events`}`;
    this._setState("resumed", `Resumed · ${caught}`);
    this.dispatchEvent(new CustomEvent("resync", { detail: { missed, from, head } }));
    clearTimeout(this._resumedTimer);
    this._resumedTimer = setTimeout(() => {
      if (this.state === "resumed") this._setState("live", "Live");
    }, RESUMED_FOR);
  }

  _message(message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    this._deliver(event, false);
  }

  async _gap(message) {
    let gap;
    try {
      gap = JSON.parse(message.data);
    } catch {
      return;
    }
    this.missed += gap.count || 0;
    try {
      await this._readLog(Math.max(0, gap.first_id - 1), gap.last_id);
    } catch {
      this.dispatchEvent(new CustomEvent("resync", { detail: { missed: gap.count, from: null, head: null } }));
    }
  }

  /** Deliver logged events after `after` (up to `until`); returns the last id read. */
  async _readLog(after, until) {
    for (;;) {
      const page = await this.api.eventLog(after, LOG_PAGE);
      for (const event of page.items) {
        if (event.id > until) return until;
        this._deliver(event, true);
      }
      if (page.items.length < LOG_PAGE || page.last_id === after) return page.last_id;
      after = page.last_id;
    }
  }

  _deliver(event, replayed) {
    if (typeof event.id !== "number" || this._seen.has(event.id)) return false;
    this._seen.add(event.id);
    if (this._seen.size > SEEN_MAX) this._seen.delete(this._seen.values().next().value);
    if (this.lastEventId === null || event.id > this.lastEventId) this.lastEventId = event.id;
    if (this._arrived) this._arrived.push(event.id);
    this.dispatchEvent(new CustomEvent("event", { detail: { event, replayed } }));
    return true;
  }

  _failed(reason) {
    if (this._stopped) return;
    this._failures += 1;
    if (this._failures >= OFFLINE_AFTER || navigator.onLine === false) {
      this._setState("offline", `${reason}; retrying`);
    } else {
      this._setState("reconnecting", `Reconnecting… (attempt ${this._failures})`);
    }
    this._schedule();
  }

  _schedule() {
    clearTimeout(this._timer);
    const delay = DELAYS[this._failures - 1] ?? MAX_DELAY;
    this._timer = setTimeout(() => this._connect(), delay);
  }

  _closeSource() {
    if (this._source) {
      this._source.onerror = null;
      this._source.close();
      this._source = null;
    }
  }

  _setState(state, detail) {
    this.state = state;
    this.detail = detail;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, detail } }));
  }
}
