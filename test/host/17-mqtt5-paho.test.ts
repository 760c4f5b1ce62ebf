// MQTT 5 interop with python3-paho-mqtt (Debian) in MQTTv5 mode, driven through
// 17-mqtt5-paho-agent.py (JSON commands in, JSON events out). Skipped when the Debian
// package is not installed (.ci/run installs it).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { after, describe, test } from "node:test";
import { ROOT, connect5, pahoPython, publish, subscribe, uid, useBroker, withTimeout, type Broker } from "./helpers.js";

const T = { timeout: 30_000 };
const PY = pahoPython();
const skip = PY ? false : "python3-paho-mqtt is not installed (apt-get install python3-paho-mqtt)";

interface PahoEvent {
  ev: string;
  [k: string]: unknown;
}

class Paho {
  private proc: ChildProcess;
  readonly events: PahoEvent[] = [];
  private waiters: Array<() => void> = [];
  private err = "";

  constructor() {
    this.proc = spawn(PY!, [path.join(ROOT, "test", "host", "17-mqtt5-paho-agent.py")], { stdio: ["pipe", "pipe", "pipe"] });
    let buf = "";
    this.proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString("utf8");
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        this.events.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      }
    });
    this.proc.stderr!.on("data", (d: Buffer) => (this.err += d.toString("utf8")));
    agents.add(this);
  }

  send(cmd: Record<string, unknown>): void {
    this.proc.stdin!.write(JSON.stringify(cmd) + "\n");
  }

  /** Waits until `n` events of kind `ev` have arrived; returns them. */
  wait(ev: string, n = 1, ms = 8000): Promise<PahoEvent[]> {
    const sel = () => this.events.filter((e) => e.ev === ev);
    return withTimeout(
      new Promise<PahoEvent[]>((resolve) => {
        const check = () => (sel().length >= n ? resolve(sel()) : this.waiters.push(check));
        check();
      }),
      ms,
      `${n} paho ${ev} event(s); stderr: ${this.err.slice(-2000)}`,
    );
  }

  async connect(b: Broker, extra: Record<string, unknown> = {}): Promise<PahoEvent> {
    this.send({ op: "connect", host: b.host, port: b.port, clientId: uid("paho"), ...extra });
    return (await this.wait("connack"))[0];
  }

  kill(): void {
    agents.delete(this);
    this.proc.kill("SIGKILL");
  }
}
const agents = new Set<Paho>();
after(() => {
  for (const a of agents) a.kill();
});

describe("MQTT 5 with paho-mqtt (Python)", { skip }, () => {
  const broker = useBroker();

  test("[MQTT-3.2.0-1] paho connects with MQTT 5 and reads the CONNACK properties", T, async () => {
    const p = new Paho();
    const ack = await p.connect(broker(), { sessionExpiry: 30 });
    assert.equal(ack.rc, 0);
    const props = ack.props as Record<string, unknown>;
    assert.ok((props.ReceiveMaximum as number) >= 1, JSON.stringify(props));
    assert.equal(props.MaximumPacketSize, 2 * 1024 * 1024);
    assert.ok((props.TopicAliasMaximum as number) >= 1);
    p.kill();
  });

  test("paho subscriber (subscription id, No Local) receives mqtt.js messages with user properties in order", T, async () => {
    const topic = uid("paho") + "/t";
    const p = new Paho();
    await p.connect(broker());
    p.send({ op: "subscribe", topic, qos: 1, subId: 9, noLocal: true });
    const [suback] = await p.wait("suback");
    assert.deepEqual(suback.codes, [1]);
    p.send({ op: "publish", topic, payload: "own", qos: 1 }); // No Local: not back to paho
    const js = await connect5(broker());
    await js.client.publishAsync(topic, "from js", {
      qos: 1,
      properties: { userProperties: { first: "1", second: ["2a", "2b"] }, contentType: "text/plain" },
    });
    const [m] = await p.wait("message");
    assert.equal(m.payload, "from js");
    assert.equal(m.qos, 1);
    const props = m.props as Record<string, unknown>;
    assert.deepEqual(props.UserProperty, [["first", "1"], ["second", "2a"], ["second", "2b"]]);
    assert.equal(props.ContentType, "text/plain");
    const sid = props.SubscriptionIdentifier;
    assert.deepEqual(Array.isArray(sid) ? sid : [sid], [9]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(p.events.filter((e) => e.ev === "message").length, 1, "No Local kept paho's own message away");
    p.kill();
  });

  test("request/response: an mqtt.js requester and a paho responder (Response Topic, Correlation Data)", T, async () => {
    const base = uid("pahorr");
    const p = new Paho();
    await p.connect(broker());
    p.send({ op: "subscribe", topic: `${base}/req`, qos: 1 });
    await p.wait("suback");
    const js = await connect5(broker());
    await subscribe(js, `${base}/resp`, 1);
    await js.client.publishAsync(`${base}/req`, "ping", {
      qos: 1,
      properties: { responseTopic: `${base}/resp`, correlationData: Buffer.from("c0ffee", "hex") },
    });
    const [req] = await p.wait("message");
    const rp = req.props as Record<string, { hex?: string } | string>;
    assert.equal(rp.ResponseTopic, `${base}/resp`);
    assert.deepEqual(rp.CorrelationData, { hex: "c0ffee" });
    p.send({ op: "publish", topic: rp.ResponseTopic, payload: "pong", qos: 1, correlationHex: "c0ffee" });
    const [resp] = await js.inbox.wait(1);
    assert.equal(resp.payload.toString(), "pong");
    assert.equal(Buffer.from(resp.properties!.correlationData!).toString("hex"), "c0ffee");
    p.kill();
  });

  test("[MQTT-3.1.2-23] paho session expiry: a persistent session is resumed with its queued message", T, async () => {
    const id = uid("pahosess");
    const topic = uid("pahosess") + "/t";
    const p1 = new Paho();
    const a1 = await p1.connect(broker(), { clientId: id, sessionExpiry: 60, cleanStart: true });
    assert.equal(a1.sessionPresent, 0);
    p1.send({ op: "subscribe", topic, qos: 1 });
    await p1.wait("suback");
    p1.send({ op: "disconnect" });
    await p1.wait("bye");
    const js = await connect5(broker());
    await publish(js, topic, "queued for paho", { qos: 1 });
    const p2 = new Paho();
    const a2 = await p2.connect(broker(), { clientId: id, sessionExpiry: 0, cleanStart: false });
    assert.equal(a2.sessionPresent, 1);
    const [m] = await p2.wait("message");
    assert.equal(m.payload, "queued for paho");
    p2.kill();
  });

  test("§4.8.2 a paho member and an mqtt.js member share $share/g/filter", T, async () => {
    const topic = uid("pahoshare") + "/t";
    const p = new Paho();
    await p.connect(broker());
    p.send({ op: "subscribe", topic: `$share/g/${topic}`, qos: 1 });
    await p.wait("suback");
    const js = await connect5(broker());
    await subscribe(js, `$share/g/${topic}`, 1);
    const pub = await connect5(broker());
    const N = 10;
    for (let i = 0; i < N; i++) await publish(pub, topic, String(i), { qos: 1 });
    await withTimeout(
      (async () => {
        while (p.events.filter((e) => e.ev === "message").length + js.inbox.messages.length < N) {
          await new Promise((r) => setTimeout(r, 50));
        }
      })(),
      8000,
      "every shared message",
    );
    await new Promise((r) => setTimeout(r, 300));
    const fromPaho = p.events.filter((e) => e.ev === "message").map((e) => Number(e.payload));
    const fromJs = js.inbox.messages.map((m) => Number(m.payload));
    assert.deepEqual([...fromPaho, ...fromJs].sort((a, b) => a - b), [...Array(N).keys()], "each exactly once");
    assert.ok(fromPaho.length > 0 && fromJs.length > 0, `spread: paho ${fromPaho.length}, mqtt.js ${fromJs.length}`);
    p.kill();
  });
});
