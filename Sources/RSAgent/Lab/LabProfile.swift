/// The realserver profile `rsagent lab` runs on each of its two realservers, built in so that
/// the lab needs no files. `yaml(stateDir:)` is the shipped `profiles/lab.yaml` with each
/// realserver's own state directory (a unit test keeps the two identical).
public enum LabProfile {
    /// Where the shipped file keeps its state.
    public static let shippedStateDir = "/var/lib/rsagent/lab"

    public static func yaml(stateDir: String) -> String {
        """
        # The realserver profile `rsagent lab` runs on each of its two realservers (in network
        # namespaces of its own making). It is an ordinary profile: LVS-DR with the VIP on lo, the ARP
        # settings on the interface facing the director, the load report and the test service.
        mode: dr
        device: lo
        interfaces: [eth0]
        vips:
          - address: \(LabNetwork.vip)
            services: [tcp/\(testPort), tcp/\(testHTTPPort)]
        arp: { ignore: 1, announce: 2, scope: interfaces }
        load:
          http: 0.0.0.0:\(loadHTTPPort)
          agent_check: 0.0.0.0:\(agentCheckPort)
        test_service: { port: \(testPort), http_port: \(testHTTPPort) }
        state_dir: \(stateDir)

        """
    }

    public static let testPort = 31337
    public static let testHTTPPort = 31380
    public static let loadHTTPPort = 3334
    public static let agentCheckPort = 3333
}
