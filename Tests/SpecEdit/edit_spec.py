#!/usr/bin/env python3
"""Applies three protocol changes to a copy of spec/protocol.yaml, as a spec author would.

    edit_spec.py SPEC --token-ttl-ms N

1. A close code: `session_expired` (4009, reconnect with a new token).
2. A client event: `whoami_state`. Before `connected` it gets `Not authenticated` like any other
   event; once authenticated it gets a new `error` event, `State: AUTHENTICATED`.
3. A client timer: session expiry. A default `token_ttl` (N ms), a timer `session_expiry` that
   raises the timer input `session_expiry_fired`, armed by the two rows that admit a client. A
   current firing closes the client with `session_expired`; a stale one is ignored. No row cancels
   it: `release` cancels every timer of a client that leaves.

Each edit inserts YAML next to an anchor line that must occur exactly once (twice for the
admitting rows), so a spec that moved on fails here with the anchor's name instead of
producing a different test.
"""
import argparse
import sys


def insert(text: str, anchor: str, addition: str, *, before: bool = True, count: int = 1) -> str:
    """Inserts `addition` before (or after) every occurrence of `anchor`, which must occur `count` times."""
    found = text.count(anchor)
    if found != count:
        sys.exit(f"edit_spec.py: anchor {anchor!r} occurs {found} times, expected {count}")
    return text.replace(anchor, addition + anchor if before else anchor + addition)


def replace(text: str, old: str, new: str, *, count: int = 1) -> str:
    """Replaces `old`, which must occur `count` times, with `new`."""
    found = text.count(old)
    if found != count:
        sys.exit(f"edit_spec.py: {old!r} occurs {found} times, expected {count}")
    return text.replace(old, new)


def edit(spec: str, token_ttl_ms: int) -> str:
    # --- 1. The close code ---------------------------------------------------------------------
    spec = insert(spec, "  normal_closure:\n", """\
  session_expired:
    code: 4009
    reason: Token expired
    reconnect: with_new_token
    triggers:
      - "The client's token outlived `tokenTtl` (counted from `connected`)"
    advice: Obtain a new token, then reconnect.
""")

    # --- 2. The client event -------------------------------------------------------------------
    spec = insert(spec, "  custom:\n    group: client\n", """\
  whoami_state:
    group: client
    event: whoami_state
    doc: The client asks which state it is in.
""")
    spec = insert(spec, "  already_authenticated:\n", """\
  state_authenticated:
    message: "State: AUTHENTICATED"
    trigger: Client sent `whoami_state` after `connected`
""")
    spec = insert(spec, "  custom:\n    from: client\n", """\
  whoami_state:
    from: client
    event: whoami_state
    data: none
    doc: Asks for the client's state; answered with an `error` event naming it (after `connected` only).
""")
    spec = replace(spec, "    on: [join, leave, custom, presence]\n    do: [touch, send_error: not_authenticated]\n",
                   "    on: [join, leave, custom, presence, whoami_state]\n    do: [touch, send_error: not_authenticated]\n")
    spec = insert(spec, "  # An abuse limit (off by default)", """\
  - from: authenticated
    on: whoami_state
    do: [touch, send_error: state_authenticated]

""")

    # --- 3. The token expiry timer -------------------------------------------------------------
    spec = insert(spec, "  shutdown_batch_size: { value: 500, type: int }\n", f"""\
  token_ttl: {{ value: {token_ttl_ms}, type: ms }}
""", before=False)
    spec = insert(spec, "  heartbeat_sweep:\n    scope: server\n", """\
  session_expiry:
    after: token_ttl
    fires: session_expiry_fired
    doc: The client's token outlived tokenTtl.
""")
    spec = insert(spec, "  heartbeat_sweep:\n    group: timer\n", """\
  session_expiry_fired:
    group: timer
    doc: The session expiry timer (tokenTtl after `connected`) fired.
""")
    # The rows into `authenticated` (authenticate_ok without encryption, handshake_ok) arm it.
    spec = replace(spec, "arm_timer: token_expiry, call: client_connected]",
                   "arm_timer: token_expiry, arm_timer: session_expiry, call: client_connected]", count=2)
    spec = insert(spec, "  # --- Transport and server", """\
  - from: authenticated
    on: session_expiry_fired
    when: [timer_current]
    to: disconnected
    do: [close: session_expired, release, announce_presence, call: client_disconnected]

  - from: authenticated
    on: session_expiry_fired
    when: [not timer_current]
    do: [ignore]

  - from: [unauthorized, authenticating, handshaking]
    on: session_expiry_fired
    do: [ignore]

""")
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--token-ttl-ms", type=int, required=True)
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as file:
        spec = file.read()
    with open(args.spec, "w", encoding="utf-8") as file:
        file.write(edit(spec, args.token_ttl_ms))


if __name__ == "__main__":
    main()
