//! The VM's network: QEMU user-mode networking with forwarded ports (`-p`, the default: no
//! root needed), or a tap device (`--net tap=NAME`) for full speed; the QEMU arguments and
//! the addressing the kernel is given (`pith.net=`).

use std::fmt;
use std::net::Ipv4Addr;

/// A forwarded port's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One `-p [HOST_ADDRESS:][HOST_PORT:]GUEST_PORT[/udp]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortForward {
    pub protocol: Protocol,
    /// The host address to listen on: all of them (0.0.0.0) unless given.
    pub host_address: Ipv4Addr,
    pub host_port: u16,
    pub guest_port: u16,
}

impl fmt::Display for PortForward {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(
            formatter,
            "{} {}:{} -> {}",
            self.protocol, self.host_address, self.host_port, self.guest_port
        )
    }
}

fn parse_port(text: &str, what: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{what} `{text}` is not a port number (1 to 65535)")),
        Ok(port) => Ok(port),
    }
}

/// Parses `-p`'s value: `8080`, `18080:8080`, `127.0.0.1:18080:8080`, `5353:53/udp`.
pub fn parse_port_forward(text: &str) -> Result<PortForward, String> {
    let (ports, protocol) = match text.rsplit_once('/') {
        Some((ports, "tcp")) => (ports, Protocol::Tcp),
        Some((ports, "udp")) => (ports, Protocol::Udp),
        Some((_, other)) => {
            return Err(format!("protocol `{other}` in `{text}`: use /tcp or /udp"))
        }
        None => (text, Protocol::Tcp),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (host_address, host_port, guest_port) = match parts.as_slice() {
        [guest] => (None, *guest, *guest),
        [host, guest] => (None, *host, *guest),
        [address, host, guest] => (Some(*address), *host, *guest),
        _ => {
            return Err(format!(
                "`{text}`: expected [HOST_ADDRESS:][HOST_PORT:]GUEST_PORT[/udp]"
            ))
        }
    };
    let host_address = match host_address {
        None => Ipv4Addr::UNSPECIFIED,
        Some(address) => address
            .parse()
            .map_err(|_| format!("host address `{address}` in `{text}` is not an IPv4 address"))?,
    };
    Ok(PortForward {
        protocol,
        host_address,
        host_port: parse_port(host_port, "host port")?,
        guest_port: parse_port(guest_port, "guest port")?,
    })
}

/// How the guest's interface is addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addressing {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub dns: Option<Ipv4Addr>,
}

impl Addressing {
    /// QEMU user-mode networking's fixed plan (slirp's defaults).
    pub const USER: Addressing = Addressing {
        address: Ipv4Addr::new(10, 0, 2, 15),
        prefix_len: 24,
        gateway: Ipv4Addr::new(10, 0, 2, 2),
        dns: Some(Ipv4Addr::new(10, 0, 2, 3)),
    };

    /// A tap's default plan: scripts/net-tap gives the host 10.0.100.1/24.
    pub const TAP: Addressing = Addressing {
        address: Ipv4Addr::new(10, 0, 100, 2),
        prefix_len: 24,
        gateway: Ipv4Addr::new(10, 0, 100, 1),
        dns: None,
    };

    /// `pith.net=`'s value.
    pub fn kernel_value(&self) -> String {
        format!(
            "{}/{},{},{}",
            self.address,
            self.prefix_len,
            self.gateway,
            self.dns.map(|dns| dns.to_string()).unwrap_or_default()
        )
    }
}

impl fmt::Display for Addressing {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(
            formatter,
            "address {}/{}, gateway {}",
            self.address, self.prefix_len, self.gateway
        )?;
        if let Some(dns) = self.dns {
            write!(formatter, ", DNS {dns}")?;
        }
        Ok(())
    }
}

/// `--net`'s value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetMode {
    /// QEMU user-mode networking (slirp): outgoing connections and forwarded ports.
    User,
    /// A tap device the host made (scripts/net-tap NAME), with the guest's addressing.
    Tap {
        name: String,
        addressing: Addressing,
    },
    /// No network device.
    None,
}

/// Parses `--net`: `user`, `none`, or `tap=NAME[,ip=ADDRESS/PREFIX][,gw=ADDRESS]`.
pub fn parse_net_mode(text: &str) -> Result<NetMode, String> {
    match text {
        "user" => return Ok(NetMode::User),
        "none" => return Ok(NetMode::None),
        _ => {}
    }
    let mut words = text.split(',');
    let Some(name) = words.next().and_then(|word| word.strip_prefix("tap=")) else {
        return Err(format!(
            "`{text}`: expected user, none, or tap=NAME[,ip=ADDRESS/PREFIX][,gw=ADDRESS]"
        ));
    };
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "tap name `{name}`: 1 to 15 characters, as Linux's interface names"
        ));
    }
    let mut addressing = Addressing::TAP;
    for word in words {
        match word.split_once('=') {
            Some(("ip", value)) => {
                let (address, prefix) = value
                    .split_once('/')
                    .ok_or_else(|| format!("ip=`{value}`: expected ADDRESS/PREFIX"))?;
                addressing.address = address
                    .parse()
                    .map_err(|_| format!("ip=`{value}`: `{address}` is not an IPv4 address"))?;
                addressing.prefix_len = prefix
                    .parse()
                    .ok()
                    .filter(|&prefix| prefix <= 32)
                    .ok_or_else(|| format!("ip=`{value}`: the prefix is 0 to 32"))?;
            }
            Some(("gw", value)) => {
                addressing.gateway = value
                    .parse()
                    .map_err(|_| format!("gw=`{value}` is not an IPv4 address"))?;
            }
            _ => return Err(format!("`{word}` in `{text}`: expected ip=... or gw=...")),
        }
    }
    Ok(NetMode::Tap {
        name: name.to_string(),
        addressing,
    })
}

/// The network a run gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub mode: NetMode,
    pub forwards: Vec<PortForward>,
}

impl Network {
    /// Checks that the forwards go with the mode (a tap is reached at the guest's address).
    pub fn new(mode: NetMode, forwards: Vec<PortForward>) -> Result<Network, String> {
        if !forwards.is_empty() && mode != NetMode::User {
            return Err(
                "-p forwards ports through QEMU user-mode networking: with --net tap the guest is reached at its own address, and --net none has no network".to_string(),
            );
        }
        Ok(Network { mode, forwards })
    }

    /// The guest's addressing, if it has a network.
    pub fn addressing(&self) -> Option<Addressing> {
        match &self.mode {
            NetMode::User => Some(Addressing::USER),
            NetMode::Tap { addressing, .. } => Some(*addressing),
            NetMode::None => None,
        }
    }

    /// QEMU's arguments for the device (virtio-net on microvm's virtio-mmio).
    pub fn qemu_args(&self) -> Vec<String> {
        let netdev = match &self.mode {
            NetMode::None => return Vec::new(),
            NetMode::User => {
                let mut netdev = "user,id=net0".to_string();
                for forward in &self.forwards {
                    netdev.push_str(&format!(
                        ",hostfwd={}:{}:{}-:{}",
                        forward.protocol,
                        forward.host_address,
                        forward.host_port,
                        forward.guest_port
                    ));
                }
                netdev
            }
            NetMode::Tap { name, .. } => {
                format!("tap,id=net0,ifname={name},script=no,downscript=no")
            }
        };
        vec![
            "-netdev".to_string(),
            netdev,
            "-device".to_string(),
            "virtio-net-device,netdev=net0".to_string(),
        ]
    }

    /// What `pith run` prints of it at boot.
    pub fn describe(&self) -> String {
        match &self.mode {
            NetMode::None => "none".to_string(),
            NetMode::User => {
                let mut text = format!("user-mode, guest {}", Addressing::USER);
                for forward in &self.forwards {
                    text.push_str(&format!("; {forward}"));
                }
                // slirp listens on a forwarded TCP port with a backlog of 1: clients that
                // connect at once wait out SYN retransmissions (docs/compat.md).
                if self
                    .forwards
                    .iter()
                    .any(|forward| forward.protocol == Protocol::Tcp)
                {
                    text.push_str(
                        " (QEMU queues one connection at a time on a forwarded port: for many clients at once, --net tap)",
                    );
                }
                text
            }
            NetMode::Tap { name, addressing } => format!("tap {name}, guest {addressing}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_forwards_parse_as_docker_writes_them() {
        let forward = parse_port_forward("8080").unwrap();
        assert_eq!((forward.host_port, forward.guest_port), (8080, 8080));
        assert_eq!(forward.host_address, Ipv4Addr::UNSPECIFIED);
        assert_eq!(forward.protocol, Protocol::Tcp);
        let forward = parse_port_forward("127.0.0.1:18080:8080").unwrap();
        assert_eq!(forward.host_address, Ipv4Addr::LOCALHOST);
        assert_eq!((forward.host_port, forward.guest_port), (18080, 8080));
        let forward = parse_port_forward("5353:53/udp").unwrap();
        assert_eq!(forward.protocol, Protocol::Udp);
        assert_eq!((forward.host_port, forward.guest_port), (5353, 53));
    }

    #[test]
    fn bad_port_forwards_say_what_is_wrong() {
        assert!(parse_port_forward("0")
            .unwrap_err()
            .contains("not a port number"));
        assert!(parse_port_forward("70000").unwrap_err().contains("`70000`"));
        assert!(parse_port_forward("80/sctp")
            .unwrap_err()
            .contains("/tcp or /udp"));
        assert!(parse_port_forward("host:1:2")
            .unwrap_err()
            .contains("not an IPv4 address"));
        assert!(parse_port_forward("1:2:3:4")
            .unwrap_err()
            .contains("expected"));
    }

    #[test]
    fn user_networking_forwards_each_port() {
        let network = Network::new(
            NetMode::User,
            vec![
                parse_port_forward("127.0.0.1:18080:8080").unwrap(),
                parse_port_forward("5353:53/udp").unwrap(),
            ],
        )
        .unwrap();
        assert_eq!(
            network.qemu_args(),
            [
                "-netdev",
                "user,id=net0,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=udp:0.0.0.0:5353-:53",
                "-device",
                "virtio-net-device,netdev=net0"
            ]
        );
        assert_eq!(
            network.addressing().unwrap().kernel_value(),
            "10.0.2.15/24,10.0.2.2,10.0.2.3"
        );
    }

    #[test]
    fn tap_takes_its_addressing() {
        let mode = parse_net_mode("tap=pith0,ip=10.9.0.2/16,gw=10.9.0.1").unwrap();
        let network = Network::new(mode, Vec::new()).unwrap();
        assert_eq!(
            network.addressing().unwrap().kernel_value(),
            "10.9.0.2/16,10.9.0.1,"
        );
        assert_eq!(
            network.qemu_args()[1],
            "tap,id=net0,ifname=pith0,script=no,downscript=no"
        );
        assert!(Network::new(
            parse_net_mode("tap=pith0").unwrap(),
            vec![parse_port_forward("80").unwrap()]
        )
        .is_err());
        assert!(parse_net_mode("bridge").is_err());
        assert!(parse_net_mode("tap=").is_err());
    }
}
