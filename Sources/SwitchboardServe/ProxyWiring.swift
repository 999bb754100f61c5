import Switchboard

/// Where the backend hooks (`proxy.*`) plug into the library's `Hooks`: each configured URL
/// replaces or extends one hook, and the others stay the serve app's own.
extension ServeApp {
    static func proxyHooks(_ hooks: inout Hooks, _ proxy: ProxyHooks, _ config: ServeConfig, _ app: WeakApp, _ logger: Logger) {
        let urls = config.proxy
        if urls.url(.connect) != nil {
            // The backend decides, from the authenticate data, the address and the named headers;
            // the tokens file and JWT settings are not consulted.
            hooks.authenticate = nil
            hooks.authenticateClient = { request in try await app.value?.authenticateThroughProxy(request) }
            // Without keys of its own the app could not check a new token: `refresh` stays a custom event.
            if !config.auth.isConfigured { hooks.refresh = nil }
        }
        if urls.url(.join) != nil {
            hooks.validateRoom = { request in try await app.value?.validateRoomThroughProxy(request) ?? [] }
        }
        if urls.url(.rpc) != nil {
            hooks.rpc = { request in try await proxy.rpc(request) }
        }
        if urls.url(.publish) != nil {
            hooks.publish = { request in try await proxy.publish(request) }
        }
        if urls.url(.disconnect) != nil {
            hooks.clientConnected = { event in
                logger.debug("client \(event.clientID) connected as \(event.userID ?? "-")")
                proxy.connected(event.clientID)
            }
            hooks.clientDisconnected = { event in
                app.value?.forget(event.clientID)
                proxy.disconnected(clientID: event.clientID, userID: event.userID)
            }
        }
    }

    /// The connect hook's verdict, counted like the authenticator's; the per-user limit applies.
    func authenticateThroughProxy(_ request: AuthenticateRequest) async throws -> AuthResult? {
        guard let proxy else { return nil }
        let result: AuthResult?
        do {
            result = try await proxy.connect(request)
        } catch {
            refuse(.proxyFailed)
            throw error  // authenticate_threw: `Authentication error`, then close 4003
        }
        guard let result else { return try await admit(.failure(.proxyRefused)) }
        return try await admit(.success(result))
    }

    /// The room policy first (its refusals answered as before), then the backend narrows what
    /// is left; rooms it leaves out get the same `Room not allowed` error as the policy's.
    func validateRoomThroughProxy(_ request: RoomRequest) async throws -> [String] {
        let allowed = try await validateRoom(request)
        guard let proxy, !allowed.isEmpty else { return allowed }
        // A throw joins nothing; with `reportJoinFailures` (set by the join URL) the client gets `Join failed`.
        let granted = try await proxy.join(clientID: request.clientID, userID: request.userID, rooms: allowed)
        let denied = allowed.filter { !granted.contains($0) }
        if !denied.isEmpty {
            stats.update { $0.roomsDenied += denied.count }
            replyError(request.clientID, "Room not allowed", rooms: denied)
        }
        return granted
    }
}
