#if canImport(Glibc)
    import Glibc
#endif

/// A metric the weight can be limited by.
public enum LoadMetric: String, Sendable, Codable, CaseIterable, Comparable {
    case cpu, load, memory, connections
    public static func < (a: LoadMetric, b: LoadMetric) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Remaining capacity per metric, in percent: `100 × (1 − value / threshold)`, clamped to
/// 0…100. The threshold is the value at which the realserver counts as full.
public func capacities(of s: LoadSample, thresholds t: LoadThresholds) -> [LoadMetric: Double] {
    func remaining(_ value: Double, _ full: Double) -> Double { min(100, max(0, 100 * (1 - value / full))) }
    var out: [LoadMetric: Double] = [
        .load: remaining(s.loadPerCPU, t.load),
        .memory: remaining(100 * s.memory.usedRatio, t.memory),
    ]
    if let cpu = s.cpu { out[.cpu] = remaining(100 * cpu, t.cpu) }
    if let full = t.connections, let busiest = s.services.map(\.established).max() {
        out[.connections] = remaining(Double(busiest), Double(full))
    }
    return out
}

/// The weight policy, pure: samples in, the weight a director should use out.
///
/// 1. **Target**: the capacity left on the most constrained metric (`capacities(of:)`).
/// 2. **Smoothing**: an exponentially weighted moving average with time constant `smoothing`
///    seconds, `s += α (target − s)` with `α = 1 − e^(−Δt/τ)`, so a one-sample spike moves it
///    a little and a lasting change moves it all the way.
/// 3. **Hysteresis**: the published weight moves only when the average is at least
///    `hysteresis` points away from it *and* has settled (changed by less than a tenth of the
///    band, at least half a point, since the last sample) — so a step in load moves the weight
///    once, to where it settles, instead of walking there in many small moves that each make
///    directors re-balance. A change that never settles (a long ramp) is published after
///    `maxHold` seconds anyway.
/// 4. **Admin state and clamps**: `drain` and `maint` report 0 at once; otherwise the published
///    weight is clamped to `min…max`. `min` (default 1) keeps a busy but healthy realserver in
///    rotation: IPVS and HAProxy treat weight 0 as "send nothing new".
public struct WeightPolicy: Sendable {
    public var thresholds: LoadThresholds
    public var minimum: Int
    public var maximum: Int
    public var smoothing: Double
    public var hysteresis: Int
    public var maxHold: Double

    /// The moving average of the target, nil before the first sample.
    public private(set) var smoothed: Double?
    /// The capacity weight last published (before admin state and clamps).
    public private(set) var published: Int?
    private var lastTime: Double = 0
    private var heldFor: Double = 0

    public init(settings: LoadSettings, maxHold: Double = 10) {
        thresholds = settings.thresholds
        minimum = settings.weightMin
        maximum = settings.weightMax
        smoothing = settings.smoothing
        hysteresis = settings.hysteresis
        self.maxHold = maxHold
    }

    /// Takes new settings (a reloaded profile) and keeps the history.
    public mutating func reconfigure(_ settings: LoadSettings) {
        let kept = (smoothed, published, lastTime, heldFor)
        self = WeightPolicy(settings: settings, maxHold: maxHold)
        (smoothed, published, lastTime, heldFor) = kept
    }

    /// What one sample decided.
    public struct Decision: Sendable, Equatable {
        /// Unsmoothed capacity, 0…100.
        public var target: Double
        /// The metric that set the target.
        public var limitedBy: LoadMetric?
        /// The moving average.
        public var smoothed: Double
        /// What directors are told: 0 for drain/maint, else the published weight within min…max.
        public var weight: Int
        /// Did the published weight move on this sample?
        public var changed: Bool
        public var capacities: [LoadMetric: Double]
    }

    public mutating func update(_ sample: LoadSample, admin: AdminState) -> Decision {
        let caps = capacities(of: sample, thresholds: thresholds)
        let limiting = caps.min { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) }
        let target = limiting?.value ?? 100
        var changed = false
        if let s = smoothed, let p = published {
            let dt = max(0, sample.time - lastTime)
            let alpha = smoothing > 0 ? 1 - exp(-dt / smoothing) : 1
            let next = s + alpha * (target - s)
            let settle = max(0.5, Double(hysteresis) / 10)
            if abs(next - Double(p)) >= Double(max(hysteresis, 1)) {
                heldFor += dt
                if abs(next - s) < settle || heldFor >= maxHold {
                    published = Int(next.rounded())
                    heldFor = 0
                    changed = true
                }
            } else {
                heldFor = 0
            }
            smoothed = next
        } else {
            smoothed = target
            published = Int(target.rounded())
            changed = true
        }
        lastTime = sample.time
        return Decision(
            target: target, limitedBy: limiting?.key, smoothed: smoothed!, weight: weight(admin: admin),
            changed: changed, capacities: caps)
    }

    /// The weight to report now: 0 while draining or in maintenance (this needs no new sample).
    public func weight(admin: AdminState) -> Int {
        guard admin == .ready, let p = published else { return 0 }
        return min(maximum, max(minimum, p))
    }
}
