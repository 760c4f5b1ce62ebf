# A python3-paho-mqtt (1.6, Debian) client in MQTT v5 mode, driven by the node:test
# file 17-mqtt5-paho.test.ts: one JSON command per line on stdin, one JSON event per
# line on stdout. Commands: connect, subscribe, publish, disconnect.
import json, sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

lock = threading.Lock()
def emit(ev):
    with lock:
        sys.stdout.write(json.dumps(ev) + "\n")
        sys.stdout.flush()

def props_json(p):
    if p is None:
        return {}
    out = {}
    for name in p.names:
        attr = name.replace(" ", "")
        if hasattr(p, attr):
            v = getattr(p, attr)
            if isinstance(v, (bytes, bytearray)):
                v = {"hex": bytes(v).hex()}
            out[attr] = v
    return out

client = None
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    if op == "connect":
        client = mqtt.Client(client_id=cmd.get("clientId", ""), protocol=mqtt.MQTTv5)
        client.on_connect = lambda c, u, flags, rc, p: emit({"ev": "connack", "rc": rc.value, "sessionPresent": flags.get("session present", 0), "props": props_json(p)})
        client.on_subscribe = lambda c, u, mid, rcs, p: emit({"ev": "suback", "mid": mid, "codes": [r.value for r in rcs]})
        client.on_publish = lambda c, u, mid: emit({"ev": "published", "mid": mid})
        def on_message(c, u, m):
            emit({"ev": "message", "topic": m.topic, "payload": m.payload.decode("utf8", "replace"), "qos": m.qos, "retain": bool(m.retain), "props": props_json(getattr(m, "properties", None))})
        client.on_message = on_message
        client.on_disconnect = lambda c, u, rc, p=None: emit({"ev": "disconnected", "rc": getattr(rc, "value", rc)})
        cp = Properties(PacketTypes.CONNECT)
        if "sessionExpiry" in cmd:
            cp.SessionExpiryInterval = cmd["sessionExpiry"]
        if "receiveMaximum" in cmd:
            cp.ReceiveMaximum = cmd["receiveMaximum"]
        client.connect(cmd["host"], cmd["port"], keepalive=60, clean_start=cmd.get("cleanStart", True), properties=cp)
        client.loop_start()
    elif op == "subscribe":
        sp = None
        if cmd.get("subId"):
            sp = Properties(PacketTypes.SUBSCRIBE)
            sp.SubscriptionIdentifier = cmd["subId"]
        opts = SubscribeOptions(qos=cmd.get("qos", 0), noLocal=cmd.get("noLocal", False), retainAsPublished=cmd.get("rap", False), retainHandling=cmd.get("rh", 0))
        client.subscribe(cmd["topic"], options=opts, properties=sp)
    elif op == "publish":
        pp = Properties(PacketTypes.PUBLISH)
        for k, v in cmd.get("user", []):
            pp.UserProperty = (k, v)
        if "responseTopic" in cmd:
            pp.ResponseTopic = cmd["responseTopic"]
        if "correlationHex" in cmd:
            pp.CorrelationData = bytes.fromhex(cmd["correlationHex"])
        if "contentType" in cmd:
            pp.ContentType = cmd["contentType"]
        client.publish(cmd["topic"], cmd.get("payload", ""), qos=cmd.get("qos", 0), retain=cmd.get("retain", False), properties=pp)
    elif op == "disconnect":
        client.disconnect()
        client.loop_stop()
        emit({"ev": "bye"})
        break
