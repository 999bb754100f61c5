/// The demo page served at `/`: one self-contained HTML file. `render` fills in the upgrade
/// path, the encryption mode and (development mode only) a sample token.
enum DemoPage {
    static func render(path: String, encryption: EncryptionMode, developmentToken: String?) -> String {
        template
            .replacing("__WS_PATH__", with: jsString(path))
            .replacing("__ENCRYPTION__", with: jsString(encryption.rawValue))
            .replacing("__DEV_TOKEN__", with: jsString(developmentToken ?? ""))
    }

    /// A JavaScript string literal (also safe inside a <script> element).
    static func jsString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            default:
                if scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static let template = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard demo</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; max-width: 60rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin: 0 0 1rem; padding: .6rem .8rem; }
  legend { font-weight: 600; }
  input[type=text] { padding: .25rem .4rem; min-width: 14rem; }
  #token { width: 100%; box-sizing: border-box; font-family: ui-monospace, monospace; }
  button { padding: .25rem .7rem; margin-right: .3rem; }
  pre { background: #f6f6f6; padding: .5rem; border-radius: 4px; overflow: auto; margin: .4rem 0 0; }
  #status { font-weight: 600; }
  #status.open { color: #1a7f37; } #status.closed { color: #b42318; }
  #log { list-style: none; padding: 0; margin: 0; font-family: ui-monospace, monospace; font-size: 13px; }
  #log li { border-bottom: 1px solid #eee; padding: .2rem 0; word-break: break-all; }
  #log li.out { color: #555; } #log li.error { color: #b42318; }
  .lock { color: #1a7f37; font-weight: 600; }
  .hint { color: #666; font-size: 12px; }
</style>
</head>
<body>
<h1>Switchboard demo</h1>
<p class="hint">WebSocket endpoint <code id="endpoint"></code> &middot; server encryption: <code id="mode"></code></p>

<fieldset>
  <legend>Connection</legend>
  <label for="token">Token</label><br>
  <input id="token" type="text" autocomplete="off" placeholder="a JWT or a token from the tokens file"><br>
  <label><input id="encrypt" type="checkbox"> encrypt (ECDH P-256 + HKDF-SHA256 + AES-256-GCM)</label><br>
  <button id="connect">Connect</button><button id="disconnect" disabled>Disconnect</button>
  status: <span id="status" class="closed">disconnected</span>
  <pre id="connected">(no connected payload yet)</pre>
</fieldset>

<fieldset>
  <legend>Rooms</legend>
  <input id="room" type="text" value="public-lobby"> <button id="join" disabled>Join</button><button id="leave" disabled>Leave</button>
  <div class="hint">joined (requested): <span id="rooms">none</span></div>
</fieldset>

<fieldset>
  <legend>Message</legend>
  <input id="text" type="text" placeholder="hello"> <button id="send" disabled>Send to room</button>
</fieldset>

<fieldset>
  <legend>Events</legend>
  <ul id="log"></ul>
</fieldset>

<script>
"use strict";
const WS_PATH = __WS_PATH__, SERVER_ENCRYPTION = __ENCRYPTION__, DEV_TOKEN = __DEV_TOKEN__;
const HKDF_INFO = new TextEncoder().encode("ignis-ecdh-p256-aes-256-gcm-v1");
const $ = (id) => document.getElementById(id);
const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + WS_PATH;
$("endpoint").textContent = wsURL;
$("mode").textContent = SERVER_ENCRYPTION;
const params = new URLSearchParams(location.search);
$("token").value = params.get("token") || DEV_TOKEN;
$("encrypt").checked = SERVER_ENCRYPTION === "required";

let ws = null, keyPair = null, aesKey = null, heartbeat = null;
let inbound = Promise.resolve();
const joined = new Set();

function b64(bytes) { let s = ""; for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b); return btoa(s); }
function unb64(text) { const s = atob(text); const out = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i); return out; }

function log(kind, text, attrs) {
  const li = document.createElement("li");
  li.className = kind;
  if (attrs) for (const [k, v] of Object.entries(attrs)) li.dataset[k] = v;
  li.textContent = text;
  $("log").prepend(li);
  return li;
}

function setOpen(open) {
  $("status").textContent = open ? (aesKey ? "connected (encrypted)" : "connected") : "disconnected";
  $("status").className = open ? "open" : "closed";
  for (const id of ["join", "leave", "send", "disconnect"]) $(id).disabled = !open;
  $("connect").disabled = open;
}

async function deriveKey(serverPublicKey, salt) {
  const peer = await crypto.subtle.importKey("raw", unb64(serverPublicKey), { name: "ECDH", namedCurve: "P-256" }, false, []);
  const bits = await crypto.subtle.deriveBits({ name: "ECDH", public: peer }, keyPair.privateKey, 256);
  const hkdf = await crypto.subtle.importKey("raw", bits, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: unb64(salt), info: HKDF_INFO },
                                 hkdf, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

async function decrypt(data) {
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(data.iv) }, aesKey, unb64(data.ct));
  return JSON.parse(new TextDecoder().decode(plain));
}

async function sendEnvelope(event, data) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  // join/leave/heartbeat are handled by the gateway itself, so they always travel in the clear.
  if (aesKey && !["join", "leave", "heartbeat", "authenticate"].includes(event)) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aesKey, new TextEncoder().encode(JSON.stringify({ event, data })));
    ws.send(JSON.stringify({ event: "encrypted", data: { iv: b64(iv), ct: b64(ct) } }));
  } else {
    ws.send(JSON.stringify({ event, data }));
  }
}

function show(message, encrypted) {
  const lock = encrypted ? "\u{1F512} " : "";
  const attrs = { event: message.event, encrypted: encrypted ? "1" : "0" };
  const d = message.data;
  if (message.event === "error") {
    log("error", lock + "error: " + JSON.stringify(d), attrs);
  } else if (d && typeof d === "object" && "from" in d && "data" in d) {
    const text = d.data && typeof d.data === "object" && "text" in d.data ? d.data.text : JSON.stringify(d.data);
    attrs.text = String(text);
    log("msg", lock + (d.room ? "[" + d.room + "] " : "[direct] ") + (d.from ?? "anonymous") + ": " + text, attrs);
  } else {
    log("event", lock + message.event + " " + JSON.stringify(d), attrs);
  }
}

async function handle(raw) {
  let message;
  try { message = JSON.parse(raw); } catch { log("error", "not JSON: " + raw); return; }
  if (message.event === "connected") {
    $("connected").textContent = JSON.stringify(message.data, null, 2);
    if (message.data.serverPublicKey && keyPair) aesKey = await deriveKey(message.data.serverPublicKey, message.data.salt);
    setOpen(true);
    log("event", "connected as " + (message.data.userId ?? "anonymous") + (aesKey ? " (encrypted)" : ""), { event: "connected" });
    return;
  }
  if (message.event === "encrypted" && aesKey) {
    try { show(await decrypt(message.data), true); } catch (e) { log("error", "cannot decrypt: " + e); }
    return;
  }
  show(message, false);
}

$("connect").onclick = async () => {
  aesKey = null; keyPair = null; joined.clear(); $("rooms").textContent = "none";
  const data = { token: $("token").value.trim() };
  if ($("encrypt").checked) {
    if (!window.crypto || !crypto.subtle) { log("error", "WebCrypto needs a secure context (https or localhost)"); return; }
    keyPair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
    data.publicKey = b64(await crypto.subtle.exportKey("raw", keyPair.publicKey));
  }
  ws = new WebSocket(wsURL);
  $("connect").disabled = true;
  ws.onopen = () => { ws.send(JSON.stringify({ event: "authenticate", data })); $("status").textContent = "authenticating"; };
  ws.onmessage = (e) => { inbound = inbound.then(() => handle(e.data)); };
  ws.onclose = (e) => {
    log("error", "closed " + e.code + (e.reason ? " " + e.reason : ""), { event: "close", code: String(e.code) });
    clearInterval(heartbeat); ws = null; aesKey = null; setOpen(false);
  };
  clearInterval(heartbeat);
  heartbeat = setInterval(() => sendEnvelope("heartbeat"), 25000);
};

$("disconnect").onclick = () => { if (ws) ws.close(1000, "bye"); };

$("join").onclick = () => {
  const room = $("room").value.trim();
  if (!room) return;
  sendEnvelope("join", { rooms: [room] });
  joined.add(room); $("rooms").textContent = [...joined].join(", ");
};

$("leave").onclick = () => {
  const room = $("room").value.trim();
  sendEnvelope("leave", { rooms: [room] });
  joined.delete(room); $("rooms").textContent = joined.size ? [...joined].join(", ") : "none";
};

$("send").onclick = async () => {
  const text = $("text").value;
  const room = $("room").value.trim();
  await sendEnvelope("send", { room, event: "message", data: { text } });
  log("out", (aesKey ? "\u{1F512} " : "") + "sent to [" + room + "]: " + text);
};
$("text").addEventListener("keydown", (e) => { if (e.key === "Enter") $("send").click(); });
</script>
</body>
</html>
"""#
}
