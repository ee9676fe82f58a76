#!/usr/bin/env python3
"""bench/run's table: rows from the benchmarks (tab-separated: bench, figure, unit, rsagent,
peer name, peer, target) printed as one aligned table and written as Markdown and a PNG chart."""
import datetime, os, platform, sys

rows_path, md_path, png_path = sys.argv[1:4]
chart_only = "--chart-only" in sys.argv[4:]  # re-run under Debian's python3 just for the chart
rows = []
for line in open(rows_path):
    bench, figure, unit, rs, peer_name, peer, target = line.rstrip("\n").split("\t")
    rs_v, peer_v = float(rs), float(peer)
    ratio = rs_v / peer_v if peer_v else None  # a peer at 0 (idle CPU) has no ratio
    met = None
    if target != "-":
        what, op, limit = target.split()
        value = ratio if what == "ratio" else rs_v
        met = value <= float(limit) if op == "<=" else value >= float(limit)
        if what == "rsagent":
            target = f"{op} {limit} {unit}"
        else:
            target = f"ratio {op} {limit}"
    rows.append(dict(bench=bench, figure=figure, unit=unit, rs=rs, peer_name=peer_name, peer=peer,
                     ratio=ratio, target=target, met=met))

verdict = lambda r: "-" if r["met"] is None else ("met" if r["met"] else "NOT met")
header = ["figure", "rsagent", "peer", "peer is", "ratio", "target", ""]
table = [[r["figure"], f'{r["rs"]} {r["unit"]}', f'{r["peer"]} {r["unit"]}', r["peer_name"],
          "-" if r["ratio"] is None else f'{r["ratio"]:.3g}', r["target"], verdict(r)] for r in rows]
widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
met = sum(1 for r in rows if r["met"])
targets = sum(1 for r in rows if r["met"] is not None)
if not chart_only:
    for line in [header] + table:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    print(f"\n{met} of {targets} targets met")

when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
host = f"{os.cpu_count()} CPUs, Linux {platform.release()}"
with open(md_path if not chart_only else os.devnull, "w") as f:
    f.write(f"<!-- written by bench/run on {when}; {host} -->\n")
    f.write("| " + " | ".join(header[:-1] + ["verdict"]) + " |\n")
    f.write("|" + "---|" * len(header) + "\n")
    for line in table:
        f.write("| " + " | ".join(str(x) for x in line) + " |\n")
    f.write(f"\n{met} of {targets} targets met; measured {when} on {host}.\n")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    # Debian's python3-matplotlib is for Debian's python3; another python3 may come first in PATH.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", __file__, rows_path, "/dev/null", png_path, "--chart-only"])
    print(f"bench/table.py: no matplotlib; {png_path} not written (apt-get install python3-matplotlib)",
          file=sys.stderr)
    sys.exit(0)
rows = [r for r in rows if r["ratio"] is not None]
fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.4))
labels = [f'{r["figure"]}\nvs {r["peer_name"]}' for r in rows][::-1]
ratios = [r["ratio"] for r in rows][::-1]
colours = [{True: "#2e7d32", False: "#c62828", None: "#757575"}[r["met"]] for r in rows][::-1]
ax.barh(range(len(rows)), ratios, color=colours)
ax.set_xscale("log")
ax.axvline(1, color="black", linewidth=0.8)
ax.set_yticks(range(len(rows)), labels, fontsize=7)
ax.set_xlabel("rsagent / peer (log scale; green: target met, red: not met)")
for i, r in enumerate(ratios):
    ax.text(r, i, f" {r:.3g}", va="center", fontsize=7)
ax.set_title(f"rsagent benchmarks against their peers, same run ({when})", fontsize=9)
fig.tight_layout()
fig.savefig(png_path, dpi=110)
print(f"wrote {png_path}" if chart_only else f"wrote {md_path} and {png_path}")
