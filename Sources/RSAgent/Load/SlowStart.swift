/// `load.slow_start`, pure: after the agent enters `ready`, the published weight ramps linearly
/// from `load.weight.min` to the computed weight over `window` seconds, so a realserver that
/// comes back (cold caches, empty pools) does not get its full share at once. IPVS has no slow
/// start, and HAProxy's `slowstart` applies only after a failed check, never after an agent's
/// `ready`; directors simply follow the weights.
public struct SlowStart: Sendable, Equatable {
    /// Seconds; 0 is off.
    public var window: Double
    /// When the ramp began (seconds since the epoch); nil: no ramp.
    public var began: Double?

    public init(window: Double, began: Double? = nil) {
        self.window = window
        self.began = began
    }

    /// How far the ramp is, 0…1; 1 when there is none or it is over.
    public func factor(at now: Double) -> Double {
        guard window > 0, let began else { return 1 }
        return min(1, max(0, (now - began) / window))
    }

    public func remaining(at now: Double) -> Double {
        guard window > 0, let began else { return 0 }
        return min(window, max(0, began + window - now))
    }

    /// The weight directors are told at `now` for a `computed` weight.
    public func weight(_ computed: Int, minimum: Int, at now: Double) -> Int {
        let f = factor(at: now)
        guard f < 1, computed > minimum else { return computed }
        return minimum + Int((Double(computed - minimum) * f).rounded(.down))
    }

    /// Where a daemon starting at `now` stands: a ramp that began `persisted` and is not over
    /// resumes (a restart in the middle must not start it again, nor skip it); otherwise a new
    /// one begins now (the daemon cannot know whether directors sent traffic while it was gone).
    public static func resuming(window: Double, persisted: Double?, at now: Double) -> SlowStart {
        if let p = persisted, p <= now, now - p < window { return SlowStart(window: window, began: p) }
        return SlowStart(window: window, began: now)
    }

    /// What `/load` shows: nil when slow start is off.
    public func status(at now: Double) -> SlowStartStatus? {
        guard window > 0 else { return nil }
        return SlowStartStatus(
            remainingS: (remaining(at: now) * 10).rounded() / 10, factor: (factor(at: now) * 1000).rounded() / 1000)
    }
}

/// `"slow_start": {"remaining_s": 42.5, "factor": 0.291}` in `/load`.
public struct SlowStartStatus: Sendable, Codable, Equatable {
    public var remainingS: Double
    public var factor: Double

    enum CodingKeys: String, CodingKey {
        case remainingS = "remaining_s", factor
    }
}
