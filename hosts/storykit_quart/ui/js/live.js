// The live connection: an EventSource on /events, opened with a single-use ticket.
//
// Nothing committed between a view's snapshot and the stream is lost: list pages carry
// `head` (the newest event id when they were read), the views pass it to `loaded()`,
// and the stream starts there. Before the first connection the stream is opened with
// `last_event_id` = the oldest snapshot head; a snapshot that arrives after the stream
// opened from a later point has the events in between read from /events/log. The
// server's `ready` event (`{head, epoch}`) says where the stream starts.
//
// Tickets are single-use, so the browser's own reconnect (same URL) cannot work: on
// any error the stream is closed and reopened here with a fresh ticket,
// `last_event_id` and the log's `epoch`, so the server replays what was missed. After a
// reconnect the missed events are also read from /events/log (they feed the activity
// list and say how many were missed) and the views re-fetch what they show ("resync"),
// so the screen is never stale. A `gap` event (the server dropped events for this
// connection) is recovered from the log the same way. A `reset` event (the server's
// log is not the one this page followed: the database was replaced) resyncs
// everything from the server's head.
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
    this.epoch = null; // the id of the server's event log, from `ready`
    this.reconnects = 0;
    this.missed = 0;
    this._seen = new Set();
    this._source = null;
    this._timer = null;
    this._failures = 0;
    this._everConnected = false;
    this._stopped = true;
    this._from = null; // the oldest snapshot head reported before a stream was ready
    this._covered = null; // the open stream delivers every event after this id
    this._backfills = Promise.resolve();
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

  /**
   * A view loaded a snapshot (a list) at `head`: make sure every event after it is
   * delivered, whether the stream is open yet or not.
   */
  loaded(head) {
    if (typeof head !== "number") return;
    if (this._covered === null) {
      this._from = this._from === null ? head : Math.min(this._from, head);
    } else if (head < this._covered) {
      this._backfill(head, this._covered);
    }
  }

  /** Deliver logged events `after < id <= until` not seen yet (one read at a time). */
  _backfill(after, until) {
    this._backfills = this._backfills
      .then(() => this._readLog(after, until))
      .catch(() => this.dispatchEvent(new CustomEvent("resync",
        { detail: { missed: null, from: null, head: null } })));
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
    this._sentFrom = this.lastEventId ?? this._from;
    this._covered = null;
    this._arrived = [];
    const url = this.api.url("/events", {
      ticket,
      last_event_id: this._sentFrom,
      epoch: this._sentFrom === null ? null : this.epoch,
    });
    const source = new EventSource(url);
    this._source = source;
    source.addEventListener("ready", (message) => this._ready(source, message));
    source.addEventListener("reset", (message) => this._reset(source, message));
    source.onmessage = (message) => this._message(message);
    source.addEventListener("gap", (message) => this._gap(message));
    source.onerror = () => {
      if (this._source !== source) return;
      this._closeSource();
      this._failed("The live connection was lost");
    };
  }

  async _ready(source, message) {
    if (this._source !== source) return;
    let position;
    try {
      position = JSON.parse(message.data);
    } catch {
      return;
    }
    const { head, epoch } = position;
    const from = this._sentFrom;
    const resetting = (from !== null && from > head) || (this.epoch !== null && epoch !== this.epoch);
    this.epoch = epoch;
    this._failures = 0;
    if (resetting) return; // the server's `reset` follows
    this._covered = from ?? head;
    const pending = this._from;
    this._from = null;
    if (pending !== null && pending < this._covered) this._backfill(pending, this._covered);
    await this._opened(source, head);
  }

  _reset(source, message) {
    if (this._source !== source) return;
    let position;
    try {
      position = JSON.parse(message.data);
    } catch {
      return;
    }
    // Ids from the other log mean nothing here: start over from the server's head.
    this.epoch = position.epoch;
    this.lastEventId = position.head;
    this._covered = position.head;
    this._from = null;
    this._seen.clear();
    this._arrived = null;
    this._everConnected = true;
    this._setState("resumed", "Resumed · the server's event log changed; reloaded");
    this.dispatchEvent(new CustomEvent("resync", { detail: { missed: null, from: null, head: null } }));
    this._resumedSoon();
  }

  async _opened(source, head) {
    if (this._source !== source) return;
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
    if (from !== null) {
      try {
        await this._readLog(from, head);
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
    this.dispatchEvent(new CustomEvent("resync",
      { detail: { missed, from, head: missed === null ? null : head } }));
    this._resumedSoon();
  }

  _resumedSoon() {
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
    while (after < until) {
      const page = await this.api.eventLog(after, LOG_PAGE);
      for (const event of page.items) {
        if (event.id > until) return until;
        this._deliver(event, true);
      }
      if (page.items.length < LOG_PAGE || page.last_id === after) return page.last_id;
      after = page.last_id;
    }
    return after;
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
