//! The one place that parses and compares versions: Kubernetes server versions with vendor suffixes,
//! Linux and Windows kernel versions, and mesh versions taken from image tags.
//!
//! Everything here is pure. Parsers return `None` or a [`VersionError`] for input they cannot read;
//! they never panic, whatever the string.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parse failure, carrying the text that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "`{0}` is not a version: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, for example 1.24 or 1.24.3"
    )]
    Malformed(String),
}

/// A `major.minor` release line, the unit every compatibility matrix speaks in (Istio 1.24, Kubernetes 1.29).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor {
    pub major: u64,
    pub minor: u64,
}

impl Minor {
    pub const fn new(major: u64, minor: u64) -> Self {
        Self { major, minor }
    }

    /// `"1.24"` (also accepts `"v1.24"`); anything else is an error.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let v = Version::parse(s)?;
        if v.patch.is_some() {
            return Err(VersionError::Malformed(s.to_string()));
        }
        Ok(v.minor_line())
    }

    /// Minors between `self` and `other` on the same major (positive when `other` is newer).
    /// Across majors the distance is not defined by any matrix; it is treated as unbounded.
    pub fn minors_to(self, other: Minor) -> i64 {
        if self.major != other.major {
            return if other > self { i64::MAX } else { i64::MIN };
        }
        other.minor as i64 - self.minor as i64
    }

    pub fn next(self) -> Minor {
        Minor::new(self.major, self.minor + 1)
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for Minor {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Minor::parse(s)
    }
}

impl Serialize for Minor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Minor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Minor::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A release version: `major.minor[.patch]`. Suffixes (`-distroless`, `-mspider`, `+k3s1`) are not part
/// of the version; the functions that read them return them separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    /// `None` when only `major.minor` was given (a target such as `--to istio=1.24`).
    pub patch: Option<u64>,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch: Some(patch),
        }
    }

    /// Strict: `1.24`, `1.24.3`, with an optional leading `v`. Nothing else.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let err = || VersionError::Malformed(s.to_string());
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let mut parts = t.split('.');
        let major = parse_num(parts.next()).ok_or_else(err)?;
        let minor = parse_num(parts.next()).ok_or_else(err)?;
        let patch = match parts.next() {
            None => None,
            Some(p) => Some(parse_num(Some(p)).ok_or_else(err)?),
        };
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Self {
            major,
            minor,
            patch,
        })
    }

    /// Lenient: the leading `major.minor[.patch]` of a string such as `1.20.3-distroless`, `v1.29.6-eks-db838b0`
    /// or `1.17.8-fix-20231226`, and the rest (without the separator) as the suffix.
    pub fn parse_prefix(s: &str) -> Option<(Self, &str)> {
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let (major, rest) = leading_num(t)?;
        let rest = rest.strip_prefix('.')?;
        let (minor, mut rest) = leading_num(rest)?;
        let mut patch = None;
        if let Some(r) = rest.strip_prefix('.')
            && let Some((p, r2)) = leading_num(r)
        {
            patch = Some(p);
            rest = r2;
        }
        let suffix = rest.trim_start_matches(['-', '+', '.', '_']);
        Some((
            Self {
                major,
                minor,
                patch,
            },
            suffix,
        ))
    }

    pub fn minor_line(&self) -> Minor {
        Minor::new(self.major, self.minor)
    }

    /// The patch, 0 when absent (for ordering only).
    pub fn patch_or_zero(&self) -> u64 {
        self.patch.unwrap_or(0)
    }

    /// Whether this (observed) version is what `want` asks for: the same `major.minor`, and the same
    /// patch when `want` names one (`1.24` accepts any 1.24 patch, `1.24.2` only 1.24.2).
    pub fn satisfies(&self, want: &Version) -> bool {
        self.major == want.major
            && self.minor == want.minor
            && (want.patch.is_none() || self.patch == want.patch)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch_or_zero()).cmp(&(
            other.major,
            other.minor,
            other.patch_or_zero(),
        ))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{}", self.major, self.minor, p),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The Kubernetes distribution a server version string reveals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    Upstream,
    Eks,
    Gke,
    Aks,
    K3s,
    Rke2,
    OpenShift,
    Other,
}

/// A Kubernetes server version as `/version` reports it, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeVersion {
    /// `gitVersion` exactly as reported, for example `v1.29.6-eks-db838b0`.
    pub git_version: String,
    /// The release, without vendor suffixes: `1.29.6`.
    pub version: Version,
    pub distribution: Distribution,
}

impl KubeVersion {
    /// Reads `/version`'s `gitVersion`, falling back to its `major`/`minor` fields (which carry a `+` on
    /// EKS and GKE: `minor: "29+"`) when `gitVersion` cannot be read.
    pub fn from_server(git_version: &str, major: &str, minor: &str) -> Result<Self, VersionError> {
        let version = match Version::parse_prefix(git_version) {
            Some((v, _)) => v,
            None => {
                let major = parse_num(Some(major.trim().trim_end_matches('+')));
                let minor = parse_num(Some(minor.trim().trim_end_matches('+')));
                match (major, minor) {
                    (Some(major), Some(minor)) => Version {
                        major,
                        minor,
                        patch: None,
                    },
                    _ => return Err(VersionError::Malformed(git_version.to_string())),
                }
            }
        };
        Ok(Self {
            git_version: git_version.to_string(),
            version,
            distribution: distribution_of(git_version),
        })
    }

    pub fn minor(&self) -> Minor {
        self.version.minor_line()
    }
}

fn distribution_of(git_version: &str) -> Distribution {
    let s = git_version.to_ascii_lowercase();
    let suffix = Version::parse_prefix(&s)
        .map(|(_, rest)| rest)
        .unwrap_or("");
    if suffix.is_empty() {
        Distribution::Upstream
    } else if suffix.starts_with("eks") {
        Distribution::Eks
    } else if suffix.starts_with("gke") {
        Distribution::Gke
    } else if suffix.starts_with("k3s") {
        Distribution::K3s
    } else if suffix.starts_with("rke2") {
        Distribution::Rke2
    } else if s.contains("aks") || s.contains("azure") {
        Distribution::Aks
    } else if is_openshift_suffix(suffix) {
        Distribution::OpenShift
    } else {
        Distribution::Other
    }
}

/// OpenShift reports `v1.27.6+f67aeb3`: a `+` and a short hexadecimal commit.
fn is_openshift_suffix(suffix: &str) -> bool {
    (7..=12).contains(&suffix.len()) && suffix.chars().all(|c| c.is_ascii_hexdigit())
}

/// A node's kernel version. Linux kernels compare numerically on `major.minor.patch` (5.9 < 5.10);
/// Windows reports its build (`10.0.20348.2527`), which no Linux rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl KernelVersion {
    /// `5.10.225-213.878.amzn2.x86_64`, `6.1.100+`, `5.15.0-1064-azure`, `4.18.0-513.24.1.el8_9.x86_64`.
    pub fn parse(s: &str) -> Option<Self> {
        let (v, _) = Version::parse_prefix(s)?;
        Some(Self {
            major: v.major,
            minor: v.minor,
            patch: v.patch.unwrap_or(0),
        })
    }

    /// True when this kernel is at least `major.minor`.
    pub fn at_least(&self, min: Minor) -> bool {
        (self.major, self.minor) >= (min.major, min.minor)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The build flavor of an Istio image, from its tag suffix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum Flavor {
    /// Community Istio (`1.22.3`, also `-debug`).
    Upstream,
    /// Community Istio, distroless base (`1.20.3-distroless`): the same release line as upstream.
    Distroless,
    /// DaoCloud's customized build (`1.21.6-mspider`); never mixed with upstream in one upgrade.
    Mspider,
    /// Another vendor build, kept as named (`solo`, `fips`, `fix-20231226`, ...).
    Vendor(String),
}

impl Flavor {
    pub fn from_suffix(suffix: &str) -> Self {
        let s = suffix.trim().to_ascii_lowercase();
        match s.as_str() {
            "" | "debug" => Flavor::Upstream,
            "distroless" => Flavor::Distroless,
            _ if s.split(['-', '.', '_']).any(|p| p == "mspider") => Flavor::Mspider,
            _ => Flavor::Vendor(suffix.trim().to_string()),
        }
    }

    /// Upstream and distroless are one family: an upgrade may move between them.
    pub fn family(&self) -> &str {
        match self {
            Flavor::Upstream | Flavor::Distroless => "upstream",
            Flavor::Mspider => "mspider",
            Flavor::Vendor(name) => name,
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flavor::Upstream => f.write_str("upstream"),
            Flavor::Distroless => f.write_str("distroless"),
            Flavor::Mspider => f.write_str("mspider"),
            Flavor::Vendor(n) => write!(f, "vendor ({n})"),
        }
    }
}

/// What an image reference says about the version it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageVersion {
    /// A tag that starts with a version: `docker.io/istio/pilot:1.20.3-distroless`.
    Tagged { version: Version, flavor: Flavor },
    /// Pinned by digest (`@sha256:...`) with no readable tag: the version must come from elsewhere
    /// (chart labels).
    Digest,
    /// A tag that is not a version (`latest`, `master-abc`), or no tag at all.
    Unreadable(String),
}

/// Reads an image reference such as `gcr.io/istio-release/pilot:1.22.3`,
/// `registry:5000/istio/proxyv2:1.21.6-mspider`, or `istio/pilot@sha256:…`.
pub fn image_version(image: &str) -> ImageVersion {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    // The tag is after the last ':' that comes after the last '/' (a registry port is not a tag).
    let last_segment_start = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let tag = name[last_segment_start..]
        .split_once(':')
        .map(|(_, t)| t.to_string());
    match tag {
        Some(t) => match Version::parse_prefix(&t) {
            Some((version, suffix)) if version.patch.is_some() || suffix.is_empty() => {
                ImageVersion::Tagged {
                    version,
                    flavor: Flavor::from_suffix(suffix),
                }
            }
            _ if digest.is_some() => ImageVersion::Digest,
            _ => ImageVersion::Unreadable(t),
        },
        None if digest.is_some() => ImageVersion::Digest,
        None => ImageVersion::Unreadable(image.to_string()),
    }
}

fn parse_num(s: Option<&str>) -> Option<u64> {
    let s = s?;
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn leading_num(s: &str) -> Option<(u64, &str)> {
    let end = s.bytes().take_while(|b| b.is_ascii_digit()).count();
    if end == 0 || end > 9 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_of_every_vendor() {
        let cases = [
            (
                "v1.29.6-eks-db838b0",
                "1",
                "29+",
                "1.29.6",
                Distribution::Eks,
            ),
            (
                "v1.30.5-gke.1014001",
                "1",
                "30",
                "1.30.5",
                Distribution::Gke,
            ),
            ("v1.28.9+k3s1", "1", "28", "1.28.9", Distribution::K3s),
            ("v1.27.16+rke2r1", "1", "27", "1.27.16", Distribution::Rke2),
            (
                "v1.27.6+f67aeb3",
                "1",
                "27",
                "1.27.6",
                Distribution::OpenShift,
            ),
            ("v1.31.2", "1", "31", "1.31.2", Distribution::Upstream),
        ];
        for (git, major, minor, want, dist) in cases {
            let v = KubeVersion::from_server(git, major, minor).unwrap();
            assert_eq!(v.version.to_string(), want, "{git}");
            assert_eq!(v.distribution, dist, "{git}");
        }
    }

    #[test]
    fn server_version_falls_back_to_major_minor_fields() {
        let v = KubeVersion::from_server("garbage", "1", "29+").unwrap();
        assert_eq!(v.minor(), Minor::new(1, 29));
        assert!(KubeVersion::from_server("garbage", "x", "y").is_err());
    }

    #[test]
    fn kernels_compare_numerically() {
        let k = |s| KernelVersion::parse(s).unwrap();
        assert_eq!(k("5.10.225-213.878.amzn2.x86_64").to_string(), "5.10.225");
        assert_eq!(k("6.1.100+").to_string(), "6.1.100");
        assert_eq!(k("5.15.0-1064-azure").to_string(), "5.15.0");
        assert_eq!(k("4.18.0-513.24.1.el8_9.x86_64").to_string(), "4.18.0");
        assert!(!k("5.9.16").at_least(Minor::new(5, 10)));
        assert!(k("5.10.0").at_least(Minor::new(5, 10)));
        assert!(k("6.1.100+").at_least(Minor::new(5, 10)));
        assert!(KernelVersion::parse("not-a-kernel").is_none());
    }

    #[test]
    fn image_tags_give_version_and_flavor() {
        let tagged = |image| match image_version(image) {
            ImageVersion::Tagged { version, flavor } => (version.to_string(), flavor),
            other => panic!("{image}: {other:?}"),
        };
        assert_eq!(
            tagged("docker.io/istio/pilot:1.22.3"),
            ("1.22.3".into(), Flavor::Upstream)
        );
        assert_eq!(
            tagged("gcr.io/istio-release/pilot:1.20.3-distroless"),
            ("1.20.3".into(), Flavor::Distroless)
        );
        assert_eq!(
            tagged("registry.local:5000/mspider/pilot:1.21.6-mspider"),
            ("1.21.6".into(), Flavor::Mspider)
        );
        assert_eq!(
            tagged("us-docker.pkg.dev/gloo-mesh/istio-abc/pilot:1.22.3-solo"),
            ("1.22.3".into(), Flavor::Vendor("solo".into()))
        );
        assert_eq!(
            image_version("docker.io/istio/pilot@sha256:0123abcd"),
            ImageVersion::Digest
        );
        assert_eq!(
            image_version("registry.local:5000/istio/pilot"),
            ImageVersion::Unreadable("registry.local:5000/istio/pilot".into())
        );
        assert!(matches!(
            image_version("istio/pilot:latest"),
            ImageVersion::Unreadable(_)
        ));
    }

    #[test]
    fn strict_versions_reject_junk() {
        assert_eq!(Version::parse("1.24").unwrap().to_string(), "1.24");
        assert_eq!(Version::parse("v1.24.3").unwrap().to_string(), "1.24.3");
        for bad in [
            "",
            "1",
            "1.x",
            "1.24.3.4",
            "1.24-rc",
            "one.two",
            "1..2",
            "99999999999.1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
        assert!(Minor::parse("1.24.1").is_err());
    }

    #[test]
    fn minor_distance() {
        assert_eq!(Minor::new(1, 20).minors_to(Minor::new(1, 22)), 2);
        assert_eq!(Minor::new(1, 22).minors_to(Minor::new(1, 20)), -2);
        assert_eq!(Minor::new(1, 9).minors_to(Minor::new(1, 10)), 1);
    }
}
