// A Bun server speaking the part of the gateway protocol the bench uses.
//
//     bun bench/peers/bun_peer.ts [--host H] [--port N] [--per-message-deflate]
//
// (port 0: any free port; --per-message-deflate offers permessage-deflate, for
// scripts/bench-deflate.)
//
// What the original gateway's runtime does with the same work, for `make bench`: Bun.serve's
// WebSocket server (uWebSockets underneath), every message parsed with JSON.parse and every
// reply built with JSON.stringify, and `broadcast` through Bun's native topics
// (`ws.subscribe` + `server.publish`), the way the original fans out to a room. It answers
// `authenticate` with `user:<id>` or `anon` with `connected` ({id, userId, time}), ignores
// `heartbeat`, sends `echo` back to the sender and `broadcast` to every authenticated client
// (sender included), and prints the LISTENING / CONNECTED / DISCONNECTED lines of
// docs/contract.md. Per connection it keeps what the original gateway keeps: an entry in a
// client registry, the user's set of clients, an authentication timer (cleared once
// authenticated) and the time of the last message, which a periodic sweep checks against the
// heartbeat timeout. No rooms beyond the one topic, no Redis or encryption.

type Session = {
  id: string;
  userId: string | null;
  authenticated: boolean;
  lastActivity: number;
  authTimer?: ReturnType<typeof setTimeout>;
};

const TOPIC = "authenticated";

function option(name: string, fallback: string): string {
  const at = Bun.argv.indexOf(name);
  return at >= 0 && at + 1 < Bun.argv.length ? Bun.argv[at + 1] : fallback;
}

const authTimeout = Number(option("--auth-timeout-ms", "5000"));
const heartbeatInterval = Number(option("--heartbeat-interval-ms", "30000"));
const heartbeatTimeout = Number(option("--heartbeat-timeout-ms", "90000"));
const clients = new Map<string, import("bun").ServerWebSocket<Session>>();
const users = new Map<string, Set<string>>();

function envelope(event: string, data: unknown): string {
  return JSON.stringify({ event, data });
}

function say(line: string) {
  process.stdout.write(line + "\n");
}

const server = Bun.serve<Session, {}>({
  hostname: option("--host", "127.0.0.1"),
  port: Number(option("--port", "0")),
  fetch(request, server) {
    const session: Session = { id: crypto.randomUUID(), userId: null, authenticated: false, lastActivity: Date.now() };
    if (server.upgrade(request, { data: session })) return undefined;
    return new Response("Upgrade required", { status: 426 });
  },
  websocket: {
    perMessageDeflate: Bun.argv.includes("--per-message-deflate"),
    maxPayloadLength: 16 * 1024 * 1024,
    open(ws) {
      const session = ws.data;
      clients.set(session.id, ws);
      session.authTimer = setTimeout(() => {
        if (!session.authenticated) ws.close(4001, "Authentication timeout");
      }, authTimeout);
    },
    message(ws, raw) {
      ws.data.lastActivity = Date.now();
      let message: any;
      try {
        message = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw));
      } catch {
        ws.send(envelope("error", { message: "Invalid message format" }));
        return;
      }
      if (message === null || typeof message !== "object" || typeof message.event !== "string") {
        ws.send(envelope("error", { message: "Invalid message format" }));
        return;
      }
      const session = ws.data;
      switch (message.event) {
        case "authenticate": {
          if (session.authenticated) {
            ws.send(envelope("error", { message: "Already authenticated" }));
            return;
          }
          const token = typeof message.data?.token === "string" ? message.data.token : "";
          if (!token.startsWith("user:") && token !== "anon") {
            ws.send(envelope("error", { message: "Authentication failed" }));
            ws.close(4003, "Authentication failed");
            return;
          }
          session.userId = token.startsWith("user:") ? token.slice(5) : null;
          session.authenticated = true;
          clearTimeout(session.authTimer);
          if (session.userId !== null) {
            let mine = users.get(session.userId);
            if (!mine) users.set(session.userId, (mine = new Set()));
            mine.add(session.id);
          }
          ws.subscribe(TOPIC);
          const info: Record<string, string> = { id: session.id, time: new Date().toISOString() };
          if (session.userId !== null) info.userId = session.userId;
          ws.send(envelope("connected", info));
          say(`CONNECTED ${session.id} ${session.userId ?? "-"}`);
          return;
        }
        case "heartbeat":
          return;
      }
      if (!session.authenticated) {
        ws.send(envelope("error", { message: "Not authenticated" }));
      } else if (message.event === "echo") {
        ws.send(envelope("echo", message.data));
      } else if (message.event === "broadcast") {
        server.publish(TOPIC, envelope("broadcast", message.data));
      }
    },
    close(ws) {
      const session = ws.data;
      clearTimeout(session.authTimer);
      clients.delete(session.id);
      if (session.userId !== null) {
        const mine = users.get(session.userId);
        mine?.delete(session.id);
        if (mine?.size === 0) users.delete(session.userId);
      }
      if (session.authenticated) say(`DISCONNECTED ${session.id} ${session.userId ?? "-"}`);
    },
  },
});

setInterval(() => {
  const now = Date.now();
  for (const ws of clients.values()) {
    if (ws.data.authenticated && now - ws.data.lastActivity > heartbeatTimeout) ws.close(4002, "Heartbeat timeout");
  }
}, heartbeatInterval);

say(`LISTENING ${server.port}`);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    server.stop(true);
    process.exit(0);
  });
}
