"""Which security/management baseline items each platform's template really configures.

FRR's vtysh has no NTP, SNMP or remote-syslog commands; instead of template comments that pretend, this
table says per platform what is covered (`yes`), covered in part (`partial`), built into the platform
(`builtin`: nothing to configure) or left to something else (`no`). Tests check the templates against it.
"""

from __future__ import annotations

from typing import Final, Literal

Coverage = Literal["yes", "partial", "builtin", "no"]

BASELINE_ITEMS: Final = (
    "hostname", "interfaces", "vlans", "routing", "management", "mgmt_acl", "ntp", "syslog", "snmpv3",
    "dns", "banner", "password_encryption", "aaa", "internet_filter", "internet_nat",
)

COVERAGE: Final[dict[str, dict[str, tuple[Coverage, str]]]] = {
    "frr": {
        "hostname": ("yes", "hostname"),
        "interfaces": ("yes", "interface/description/ip address; the interfaces themselves are kernel devices"),
        "vlans": ("no", "vtysh has no VLAN commands: VLAN devices are created by the host (lab: iproute2)"),
        "routing": ("yes", "static routes: TSLCD summary or per-LAN, Internet default, blackhole guard"),
        "management": ("yes", "mgmt0 interface address, never removed by a deploy"),
        "mgmt_acl": ("partial", "access-list + `line vty` access-class filter FRR's vty; SSH to vtysh is "
                                "filtered by the host's sshd / packet filter"),
        "ntp": ("no", "no NTP in vtysh: the host's chrony/ntpd"),
        "syslog": ("partial", "`log syslog informational` to the host's syslog; forwarding to the SOC is the "
                              "host's rsyslog"),
        "snmpv3": ("no", "no SNMP agent in vtysh: the host's snmpd (AgentX)"),
        "dns": ("no", "no resolver config in vtysh: the host's resolv.conf"),
        "banner": ("no", "vtysh's `banner motd` is not part of the running config: sshd's Banner"),
        "password_encryption": ("yes", "service password-encryption"),
        "aaa": ("no", "logins are the host's sshd/PAM (vtysh is the login shell)"),
        "internet_filter": ("no", "no packet filter in vtysh: the host's nftables (lab: the ISP cloud does not "
                                  "route private prefixes)"),
        "internet_nat": ("no", "no NAT in vtysh: the host's nftables (the lab decides how the ISP cloud answers)"),
    },
    "cisco_ios": {
        "hostname": ("yes", "hostname"),
        "interfaces": ("yes", "interface/description/bandwidth/ip address/no shutdown"),
        "vlans": ("yes", "802.1Q subinterface <lan>.<vlan> with encapsulation dot1Q"),
        "routing": ("yes", "ip route: TSLCD summary or per-LAN, Internet default, Null0 guard"),
        "management": ("yes", "mgmt interface, ssh v2, logging/ntp source"),
        "mgmt_acl": ("yes", "ip access-list standard MGMT-SSH on line vty (access-class, transport input ssh)"),
        "ntp": ("yes", "ntp server"),
        "syslog": ("yes", "logging host <SOC>, logging trap informational"),
        "snmpv3": ("yes", "view + v3 priv group limited by MGMT-SSH; the user and its keys are set by deploy"),
        "dns": ("yes", "ip name-server"),
        "banner": ("yes", "banner login"),
        "password_encryption": ("yes", "service password-encryption; enable secret set by deploy"),
        "aaa": ("yes", "aaa new-model, local login and exec authorization"),
        "internet_filter": ("yes", "ip access-list extended INTERNET-IN on the Internet interface: LANs and "
                                   "management unreachable from the Internet line (checked before NAT)"),
        "internet_nat": ("yes", "PAT: ip nat inside (LAN) / outside (Internet), overload; none towards TSLCD"),
    },
    "huawei_vrp": {
        "hostname": ("yes", "sysname"),
        "interfaces": ("yes", "interface/description/ip address"),
        "vlans": ("yes", "dot1q termination subinterface <lan>.<vlan>"),
        "routing": ("yes", "ip route-static: TSLCD summary or per-LAN, Internet default, NULL0 guard"),
        "management": ("yes", "mgmt interface, stelnet server"),
        "mgmt_acl": ("yes", "acl 2000 on user-interface vty 0 4, protocol inbound ssh"),
        "ntp": ("yes", "ntp-service unicast-server"),
        "syslog": ("yes", "info-center loghost <SOC>"),
        "snmpv3": ("yes", "mib-view + v3 privacy group with acl 2000; usm-user keys set by deploy"),
        "dns": ("yes", "dns resolve / dns server"),
        "banner": ("yes", "header login information"),
        "password_encryption": ("builtin", "VRP stores local-user passwords irreversible-cipher"),
        "aaa": ("yes", "aaa local-user service-type ssh, authentication-mode aaa on vty"),
        "internet_filter": ("yes", "acl 3000 as traffic-filter inbound on the Internet interface; its order "
                                   "against NAT is not verified on a VRP device"),
        "internet_nat": ("yes", "nat outbound acl 2010 (LAN) on the Internet interface"),
    },
    "mikrotik_routeros": {
        "hostname": ("yes", "/system identity"),
        "interfaces": ("yes", "/ip address with comments"),
        "vlans": ("yes", "/interface vlan"),
        "routing": ("yes", "/ip route: TSLCD summary or per-LAN, Internet default, blackhole guard"),
        "management": ("yes", "address on the mgmt interface"),
        "mgmt_acl": ("yes", "/ip service ssh address= NOC, input filter drops other SSH"),
        "ntp": ("yes", "/system ntp client"),
        "syslog": ("yes", "/system logging action target=remote"),
        "snmpv3": ("yes", "/snmp community security=private limited to the NOC; keys set by deploy"),
        "dns": ("yes", "/ip dns servers"),
        "banner": ("yes", "/system note show-at-login"),
        "password_encryption": ("builtin", "RouterOS never exports user passwords"),
        "aaa": ("no", "/export never shows /user: the netops user and key are imported by deploy"),
        "internet_filter": ("yes", "forward chain: established/related accepted, new traffic from the Internet "
                                   "interface to LANs and management dropped"),
        "internet_nat": ("yes", "srcnat masquerade of the LAN out of the Internet interface"),
    },
}


def covers(platform: str, item: str) -> bool:
    """True when the platform's template configures the item (fully or in part)."""
    return COVERAGE[platform][item][0] in ("yes", "partial")
