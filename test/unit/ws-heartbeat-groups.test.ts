/**
 * The endpoint's heartbeat pings its sockets in groups spread over the interval (issue 12: 10,000
 * pings in one tick held the event loop ~0.4 s, delaying fan-out; a tenth of them still 30–60 ms):
 * a tick every 100 ms, up to 300 groups; each tick pings one group, every socket exactly once per
 * round of ticks (= `heartbeatMs`), groups stay even.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Heartbeat } from '../../src/api/ws/heartbeat.js';

/** A socket stand-in that counts its pings. */
const member = () => ({ beats: 0, beat() { this.beats++; } });

describe('WebSocket heartbeat groups', () => {
  test('3,000 sockets at 30 s: 300 ticks ping 10 each, every socket once per round; a closed one no more', () => {
    const hb = new Heartbeat(30_000);
    const ms = Array.from({ length: 3000 }, member);
    for (const m of ms) hb.add(m);
    const newcomer = member();
    const pinged = (): number => ms.reduce((n, m) => n + m.beats, newcomer.beats);
    try {
      for (let round = 1; round <= 2; round++) {
        for (let t = 0; t < 300; t++) {
          const before = pinged();
          hb.tick();
          assert.equal(pinged() - before, 10, `tick ${t} of round ${round}`);
        }
        assert.ok(ms.every((m) => m.beats === round), `every socket pinged once in round ${round}`);
      }
      const gone = ms[0] as ReturnType<typeof member>;
      hb.delete(gone);
      for (let t = 0; t < 300; t++) hb.tick();
      assert.equal(gone.beats, 2);
      // A newcomer joins the group that lost a member: groups stay even.
      hb.add(newcomer);
      const counts: number[] = [];
      for (let t = 0; t < 300; t++) {
        const before = pinged();
        hb.tick();
        counts.push(pinged() - before);
      }
      assert.deepEqual(counts, Array(300).fill(10));
    } finally {
      for (const m of [...ms, newcomer]) hb.delete(m); // the timer goes with the last socket
    }
  });

  test('a short interval uses fewer groups (a tick at most every 100 ms): 300 ms, 3 groups', () => {
    const hb = new Heartbeat(300);
    const ms = Array.from({ length: 6 }, member);
    for (const m of ms) hb.add(m);
    try {
      hb.tick();
      assert.equal(ms.filter((m) => m.beats === 1).length, 2);
      hb.tick();
      hb.tick();
      assert.ok(ms.every((m) => m.beats === 1));
    } finally {
      for (const m of ms) hb.delete(m);
    }
  });
});
