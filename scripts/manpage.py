#!/usr/bin/env python3
"""Writes rsagent(8) in troff from the argument parser's own description of the command line
(`rsagent --experimental-dump-help`), so the manual says exactly what `--help` says.

Usage: scripts/manpage.py BINARY VERSION > rsagent.8
The date is $SOURCE_DATE_EPOCH's (reproducible builds), else today's.
"""
import json, os, subprocess, sys, time

binary, version = sys.argv[1], sys.argv[2]
tool = json.loads(subprocess.run([binary, "--experimental-dump-help"], check=True, capture_output=True).stdout)
root = tool["command"]
epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
date = time.strftime("%Y-%m-%d", time.gmtime(epoch))


def esc(text):
    """Escapes text for troff: backslashes, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + l if l[:1] in ".'" else l) for l in text.split("\n"))


def flag(arg):
    names = arg.get("names", [])
    spelled = ", ".join(("-" if n["kind"] == "short" else "--") + n["name"] for n in names)
    if arg["kind"] == "positional":
        spelled = arg.get("valueName", "ARG").upper()
    elif arg["kind"] == "option":
        spelled += " " + arg.get("valueName", "value").upper()
    return spelled


def synopsis(cmd):
    parts = ["rsagent", cmd["commandName"]]
    for a in cmd.get("arguments", []):
        if not a.get("shouldDisplay", True) or a.get("preferredName", {}).get("name") in ("help", "version"):
            continue
        text = flag(a).split(", ")[-1]
        if a.get("isRepeating"):
            text += " ..."
        parts.append(text if not a.get("isOptional") else "[" + text + "]")
    return " ".join(parts)


out = [
    f'.TH RSAGENT 8 "{date}" "rsagent {version}" "System Administration"',
    ".SH NAME",
    "rsagent \\- " + esc(root["abstract"][0].lower() + root["abstract"][1:].rstrip(".")),
    ".SH SYNOPSIS",
    ".B rsagent",
    ".I COMMAND",
    "[\\fIOPTIONS\\fR]",
    ".SH DESCRIPTION",
    esc("rsagent makes and keeps a Linux host a correct realserver of a Linux Virtual Server (LVS/IPVS) "
        "cluster, from one YAML profile: VIPs on a non-ARPing device, ARP and reverse-path filtering "
        "sysctls, tunnel devices, a load report for directors, and a test service. Everything it adds "
        "carries its mark, and `rsagent down` removes exactly that."),
    ".PP",
    esc(root.get("discussion", "")),
    ".SH COMMANDS",
]
for cmd in root["subcommands"]:
    if cmd["commandName"] == "help" or not cmd.get("shouldDisplay", True):
        continue
    out += [".SS " + esc(cmd["commandName"]), ".B " + esc(synopsis(cmd)), ".PP", esc(cmd.get("abstract", ""))]
    if cmd.get("discussion"):
        out += [".PP", esc(cmd["discussion"])]
    for a in cmd.get("arguments", []):
        if not a.get("shouldDisplay", True) or a.get("preferredName", {}).get("name") in ("help", "version"):
            continue
        help_text = a.get("abstract", "")
        if a.get("defaultValue") not in (None, ""):
            help_text += f" (default: {a['defaultValue']})"
        out += [".TP", ".B " + esc(flag(a)), esc(help_text)]
out += [
    ".SH FILES",
    ".TP", ".I /etc/rsagent/rsagent.yaml", "The profile the systemd unit runs, and the default of \\-c.",
    ".TP", ".I /etc/rsagent/profiles/", "Example profiles (DR on lo, DR on a dummy device, Tun, IPv6, staging).",
    ".TP", ".I /var/lib/rsagent/", "state.json (sysctl values from before rsagent, devices it created), the "
    "admin state, the daemon's status and admin socket.",
    ".TP", ".I /run/rsagent/netns/", "Which state_dir owns each network namespace (one rsagent per namespace).",
    ".SH EXIT STATUS",
    "0 success; 1 runtime failure; 2 invalid profile or arguments, or a conflict with the host "
    "(nothing touched); 3 drift found (\\fBstatus\\fR).",
    ".SH SEE ALSO",
    ".BR ip (8),",
    ".BR ipvsadm (8),",
    ".BR keepalived (8),",
    ".BR haproxy (1).",
    "The README and docs/ in /usr/share/doc/rsagent have the profile reference and director recipes.",
]
print("\n".join(out))
