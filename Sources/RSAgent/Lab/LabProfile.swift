/// The shipped `profiles/lab.yaml`, built in so that `rsagent lab` needs no files (a unit test
/// keeps the two identical). `rsagent lab` gives each realserver its own `state_dir`.
public enum LabProfile {
    public static let text = """
        # The realserver profile `rsagent lab` runs on each of its two realservers (in network
        # namespaces of its own making). It is an ordinary profile: LVS-DR with the VIP on lo, the ARP
        # settings on the interface facing the director, the load report and the test service.
        mode: dr
        device: lo
        interfaces: [eth0]
        vips:
          - address: 192.0.2.100
            services: [tcp/31337, tcp/31380]
        arp: { ignore: 1, announce: 2, scope: interfaces }
        load:
          http: 0.0.0.0:3334
          agent_check: 0.0.0.0:3333
        test_service: { port: 31337, http_port: 31380 }
        state_dir: /var/lib/rsagent/lab

        """
}
