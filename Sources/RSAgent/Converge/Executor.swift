import Netlink

#if canImport(Glibc)
    import Glibc
#endif

/// What happened when a plan was carried out.
public struct ExecutionReport: Sendable {
    public enum Outcome: String, Sendable, Codable {
        /// Every action succeeded.
        case converged
        /// An action failed and everything this run did was undone: the host is as it was.
        case rolledBack = "rolled_back"
        /// An action failed and some changes could not be undone (or, for `down`, were skipped).
        case partial
    }
    public var done: [Action] = []
    public var failures: [(action: Action, error: any Error)] = []
    public var rolledBack: [Action] = []
    public var rollbackFailures: [(action: Action, error: any Error)] = []
    public var warnings: [String] = []
    /// True for `apply`, whose failures are rolled back; false for `down`.
    public var rollsBack = true

    public var outcome: Outcome {
        if failures.isEmpty { return .converged }
        return rollsBack && rollbackFailures.isEmpty ? .rolledBack : .partial
    }
}

/// Carries out a plan against a `HostSystem`, keeping `state.json` in step.
///
/// `apply` is all-or-nothing: each successful action pushes its inverse, and on the first
/// failure the inverses run newest-first. `down` goes on past failures and reports them: undoing
/// a removal would put back what the operator asked to remove.
public final class Executor {
    let host: any HostSystem
    let store: StateStore
    public private(set) var state: AgentState

    public init(host: any HostSystem, store: StateStore, state: AgentState) {
        self.host = host; self.store = store; self.state = state
    }

    /// True when the action needs `state.json` written before it runs.
    static func needsState(_ a: Action) -> Bool {
        switch a {
        case .addAddress, .adoptAddress, .removeAddress: false
        default: true
        }
    }

    public func apply(_ actions: [Action]) -> ExecutionReport {
        var report = ExecutionReport()
        // Find an unwritable state_dir before the first change, not in the middle.
        if actions.contains(where: Self.needsState) {
            do { try store.save(state) } catch {
                report.failures.append((actions.first(where: Self.needsState)!, error))
                return report
            }
        }
        var undo: [(Action, () throws -> Void)] = []
        for action in actions {
            do {
                if let inverse = try perform(action) { undo.append((action, inverse)) }
                report.done.append(action)
            } catch {
                report.failures.append((action, error))
                for (a, inverse) in undo.reversed() {
                    do { try inverse(); report.rolledBack.append(a) } catch {
                        report.rollbackFailures.append((a, error))
                    }
                }
                return report
            }
        }
        return report
    }

    /// Runs every action, reporting failures without undoing anything; then forgets the state
    /// that `down` has dealt with.
    public func down(_ plan: Plan) -> ExecutionReport {
        var report = ExecutionReport()
        report.rollsBack = false
        report.warnings = plan.warnings
        for action in plan.actions {
            do { _ = try perform(action); report.done.append(action) } catch { report.failures.append((action, error)) }
        }
        // Sysctls that someone else changed (warned about) or already restored are forgotten;
        // those whose restore failed stay, so the next `down` tries again.
        let failedKeys = Set(
            report.failures.compactMap { f -> String? in
                if case let .restoreSysctl(k, _, _) = f.action { return k.description } else { return nil }
            })
        state.sysctls = state.sysctls.filter { failedKeys.contains($0.key) }
        state.tunnelModes = state.tunnelModes.filter { dev, _ in
            report.failures.contains { if case .restoreTunnelMode(dev, _, _) = $0.action { true } else { false } }
        }
        state.linksSetUp = state.linksSetUp.filter { name in
            report.failures.contains { if case .setLinkDown(name) = $0.action { true } else { false } }
        }
        do {
            if state.isEmpty { store.clear() } else { try store.save(state) }
        } catch {
            report.warnings.append("\(error)")
        }
        return report
    }

    /// Does one action; returns its inverse for rollback, if it has one.
    func perform(_ action: Action) throws -> (() throws -> Void)? {
        switch action {
        case let .createDevice(name, kind):
            // Recorded first: after a kill -9 between these two lines the device is still ours.
            let before = state
            state.devices.append(name)
            try store.save(state)
            do {
                try host.createDevice(name: name, kind: kind)
            } catch {
                state = before
                try? store.save(state)
                throw error
            }
            // The alias is a second, visible mark; state.json already records ownership, so a
            // refused alias must not leave a created device outside the rollback.
            try? host.setAlias(name: name, alias: ownerAlias)
            return { [self] in
                try host.deleteDevice(name: name)
                state.devices.removeAll { $0 == name }
                try store.save(state)
            }
        case let .adoptDevice(name):
            state.devices.append(name)
            try store.save(state)
            try host.setAlias(name: name, alias: ownerAlias)
            return { [self] in
                state.devices.removeAll { $0 == name }; try store.save(state)
            }
        case let .loadTunnelModule(name, kind):
            // A loaded module is harmless and its fallback device cannot be deleted; only one
            // rsagent had to create itself is its own.
            guard try host.ensureTunnelDevice(name: name, kind: kind) else { return nil }
            state.devices.append(name)
            try store.save(state)
            return { [self] in
                try host.deleteDevice(name: name)
                state.devices.removeAll { $0 == name }
                try store.save(state)
            }
        case let .createOwnTunnel(t):
            // Recorded first, as for a dummy device.
            let before = state
            state.devices.append(t.name)
            try store.save(state)
            do {
                try host.createOwnTunnel(t)
            } catch {
                state = before
                try? store.save(state)
                throw error
            }
            try? host.setAlias(name: t.name, alias: ownerAlias)
            return { [self] in
                try host.deleteDevice(name: t.name)
                state.devices.removeAll { $0 == t.name }
                try store.save(state)
            }
        case let .deleteOwnTunnel(t):
            try host.deleteDevice(name: t.name)
            state.devices.removeAll { $0 == t.name }
            state.linksSetUp.removeAll { $0 == t.name }
            try store.save(state)
            return { [self] in
                state.devices.append(t.name)
                try store.save(state)
                try host.createOwnTunnel(t)
                try host.setAlias(name: t.name, alias: ownerAlias)
                try host.setLink(name: t.name, up: true)
            }
        case let .setTunnelMode(device, from, to):
            let previous = state.tunnelModes[device]
            state.tunnelModes[device] = .init(original: previous?.original ?? from, written: to)
            try store.save(state)
            try host.setTunnelMode(name: device, proto: to)
            return { [self] in
                try host.setTunnelMode(name: device, proto: from)
                state.tunnelModes[device] = previous
                try store.save(state)
            }
        case let .restoreTunnelMode(device, _, to):
            try host.setTunnelMode(name: device, proto: to)
            state.tunnelModes[device] = nil
            try store.save(state)
            return nil
        case let .addFOUPort(port):
            // Recorded first: a FOU port carries no owner mark, and a `kill -9` between the
            // two must still leave it known as rsagent's.
            // On failure the record stays: the kernel may have added it all the same (its answer
            // lost), and `down` removes only a recorded port that is there.
            let recorded = !state.fouPorts.contains(port)
            if recorded { state.fouPorts.append(port); try store.save(state) }
            try host.addFOUPort(port)
            return { [self] in
                try host.deleteFOUPort(port)
                if recorded { state.fouPorts.removeAll { $0 == port }; try store.save(state) }
            }
        case let .setMSSClamp(ruleset):
            try host.replaceMSSClamp(ruleset)
            return { [host] in try host.removeMSSClamp() }
        case .removeMSSClamp:
            try host.removeMSSClamp()
            return nil
        case let .removeFOUPort(port):
            try host.deleteFOUPort(port)
            state.fouPorts.removeAll { $0 == port }
            try store.save(state)
            return { [self] in
                state.fouPorts.append(port)
                try store.save(state)
                try host.addFOUPort(port)
            }
        case let .setLinkUp(name, restoreOnDown):
            let recorded = restoreOnDown && !state.linksSetUp.contains(name)
            if recorded { state.linksSetUp.append(name); try store.save(state) }
            try host.setLink(name: name, up: true)
            return { [self] in
                try host.setLink(name: name, up: false)
                if recorded { state.linksSetUp.removeAll { $0 == name }; try store.save(state) }
            }
        case let .setSysctl(key, _, to):
            guard let current = try host.readSysctl(key) else {
                throw SystemError(
                    operation: "setting \(key) to \(to)", errno: ENOENT,
                    reason: "\(key.procPath) does not exist (no such interface?)")
            }
            let previousRecord = state.sysctls[key.description]
            state.sysctls[key.description] = .init(original: previousRecord?.original ?? current, written: to)
            try store.save(state)
            try host.writeSysctl(key, to)
            return { [self] in
                try host.writeSysctl(key, current)
                state.sysctls[key.description] = previousRecord
                try store.save(state)
            }
        case let .restoreSysctl(key, _, to):
            try host.writeSysctl(key, to)
            state.sysctls[key.description] = nil
            try store.save(state)
            return nil
        case let .addAddress(ip, device):
            try host.addAddress(ip, prefix: ip.hostPrefixLength, device: device, replace: false)
            return { [host] in try host.deleteAddress(ip, prefix: ip.hostPrefixLength, device: device) }
        case let .adoptAddress(ip, prefix, device):
            try host.addAddress(ip, prefix: prefix, device: device, replace: true)
            return nil  // leaving the mark on is harmless
        case let .removeAddress(ip, prefix, device):
            do {
                try host.deleteAddress(ip, prefix: prefix, device: device)
            } catch let e as NetlinkError where e.errno == EADDRNOTAVAIL {
                return nil  // already gone (someone else removed it): the goal holds
            }
            return { [host] in try host.addAddress(ip, prefix: prefix, device: device, replace: false) }
        case let .deleteDevice(name, kind):
            try host.deleteDevice(name: name)
            state.devices.removeAll { $0 == name }
            state.linksSetUp.removeAll { $0 == name }
            try store.save(state)
            return { [self] in
                state.devices.append(name)
                try store.save(state)
                // The same kind as deleted: a fallback tunnel device comes back as it was made.
                if DecapDevice.fallbackNames[kind] == name {
                    _ = try host.ensureTunnelDevice(name: name, kind: kind)
                } else {
                    try host.createDevice(name: name, kind: kind)
                }
                try host.setAlias(name: name, alias: ownerAlias)
            }
        case let .setLinkDown(name):
            try host.setLink(name: name, up: false)
            state.linksSetUp.removeAll { $0 == name }
            try store.save(state)
            return nil
        }
    }
}
