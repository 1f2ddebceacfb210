#!/usr/bin/env bash
# Release kubectl-meshup: build the binary for this machine's platform, package the krew archives, write
# checksums.txt, and render the krew manifest plugin-manifest/meshup.yaml from .krew.yaml.
#
# Archives are named kubectl-meshup_<tag>_<os>_<arch>.tar.gz (.zip on Windows) and hold the binary
# (kubectl-meshup or kubectl-meshup.exe), LICENSE, README.md and the kubectl_complete-meshup helper, flat.
# They are reproducible: same inputs and SOURCE_DATE_EPOCH (default: the last commit's time) give the same
# bytes, so running the script twice gives the same checksums.
#
# This machine builds one platform. The other archives come from CI (or `--binary` runs on other
# machines) into the same --out directory; the manifest takes the sha256 of every archive found there.
set -euo pipefail

readonly PROGRAM="scripts/release.sh"
readonly PLATFORMS=(linux_amd64 linux_arm64 darwin_amd64 darwin_arm64 windows_amd64 windows_arm64)
readonly PLACEHOLDER_SHA256="0000000000000000000000000000000000000000000000000000000000000000"

usage() {
  cat <<EOF
Usage: $PROGRAM [options] VERSION

Builds kubectl-meshup for this machine, packages the krew archive, writes checksums.txt and renders the
krew manifest from .krew.yaml. VERSION is the release tag, e.g. v0.1.0; it must match Cargo.toml.

Options:
  --binary PATH      package this already-built binary instead of running cargo (CI, tests)
  --platform OS_ARCH platform of the binary, one of: ${PLATFORMS[*]} (default: this machine's)
  --out DIR          where the archives and checksums.txt go (default: dist)
  --manifest PATH    where the rendered manifest goes (default: plugin-manifest/meshup.yaml)
  --allow-missing    render platforms whose archive is not in --out with a placeholder sha256 of zeros
                     and a comment saying so (sample manifests only: never submit one to krew-index)
  -h, --help         show this help
EOF
}

die() {
  echo "$PROGRAM: error: $*" >&2
  exit 1
}

say() {
  echo "$PROGRAM: $*" >&2
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT

absolute() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$PWD" "$1" ;;
  esac
}

binary=""
platform=""
out_dir="$ROOT/dist"
manifest="$ROOT/plugin-manifest/meshup.yaml"
allow_missing=false
version=""
while (($# > 0)); do
  case "$1" in
    --binary) [[ $# -ge 2 ]] || die "--binary needs a path"; binary="$(absolute "$2")"; shift 2 ;;
    --platform) [[ $# -ge 2 ]] || die "--platform needs OS_ARCH"; platform="$2"; shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a directory"; out_dir="$(absolute "$2")"; shift 2 ;;
    --manifest) [[ $# -ge 2 ]] || die "--manifest needs a path"; manifest="$(absolute "$2")"; shift 2 ;;
    --allow-missing) allow_missing=true; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1 (see --help)" ;;
    *) [[ -z "$version" ]] || die "one VERSION only, got '$version' and '$1'"; version="$1"; shift ;;
  esac
done
[[ -n "$version" ]] || { usage >&2; die "VERSION is missing, e.g. $PROGRAM v0.1.0"; }

# --- the version: a v-prefixed semver tag that matches Cargo.toml ----------------------------------------
[[ "$version" =~ ^v?([0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?)$ ]] ||
  die "VERSION '$version' is not a semantic version such as v0.1.0"
readonly tag="v${BASH_REMATCH[1]}"
cargo_version="$(awk -F'"' '/^\[/ { in_package = ($0 == "[package]") } in_package && /^version *=/ { print $2; exit }' "$ROOT/Cargo.toml")"
[[ "v$cargo_version" == "$tag" ]] ||
  die "tag $tag does not match Cargo.toml version $cargo_version; bump Cargo.toml or pass v$cargo_version"

# --- the platform -----------------------------------------------------------------------------------------
host_platform() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW* | MSYS* | CYGWIN*) os=windows ;;
    *) die "cannot name this machine's OS '$(uname -s)'; pass --platform" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "cannot name this machine's architecture '$(uname -m)'; pass --platform" ;;
  esac
  echo "${os}_${arch}"
}
[[ -n "$platform" ]] || platform="$(host_platform)"
[[ " ${PLATFORMS[*]} " == *" $platform "* ]] || die "platform '$platform' is not one of: ${PLATFORMS[*]}"
readonly platform

# --- the binary -------------------------------------------------------------------------------------------
rust_target_for() {
  case "$1" in
    # musl gives a static binary that runs on any Linux; glibc is the fallback.
    linux_amd64) echo "x86_64-unknown-linux-musl x86_64-unknown-linux-gnu" ;;
    linux_arm64) echo "aarch64-unknown-linux-musl aarch64-unknown-linux-gnu" ;;
    darwin_amd64) echo "x86_64-apple-darwin" ;;
    darwin_arm64) echo "aarch64-apple-darwin" ;;
    windows_amd64) echo "x86_64-pc-windows-msvc" ;;
    windows_arm64) echo "aarch64-pc-windows-msvc" ;;
  esac
}

target_installed() {
  local sysroot
  sysroot="$(rustc --print sysroot)" || return 1
  [[ -d "$sysroot/lib/rustlib/$1/lib" ]]
}

if [[ -z "$binary" ]]; then
  command -v cargo >/dev/null || die "cargo not found; install Rust (https://rustup.rs) or pass --binary"
  [[ "$platform" == "$(host_platform)" ]] ||
    die "this machine builds $(host_platform) only; build $platform in CI and pass its binary with --binary"
  target=""
  for candidate in $(rust_target_for "$platform"); do
    if target_installed "$candidate"; then target="$candidate"; break; fi
    say "Rust target $candidate is not installed (rustup target add $candidate), trying the next one"
  done
  [[ -n "$target" ]] || die "no Rust target installed for $platform; run: rustup target add $(rust_target_for "$platform" | cut -d' ' -f1)"
  # ring compiles C for the target. Without a musl cross compiler, the host C compiler does for the
  # same architecture: ring's C uses only freestanding headers and links against musl's libc.a.
  cc_variable="CC_${target//-/_}"
  if [[ "$target" == *-linux-musl && -z "${!cc_variable:-}" ]] &&
    ! command -v "${target%%-*}-linux-musl-gcc" >/dev/null && ! command -v musl-gcc >/dev/null; then
    say "no musl C compiler found; ring's C code is compiled with the host cc ($cc_variable=cc)"
    export "$cc_variable=cc"
  fi
  say "building kubectl-meshup $tag for $platform ($target, release profile)"
  (cd "$ROOT" && cargo build --release --locked --target "$target" --bin kubectl-meshup)
  binary="${CARGO_TARGET_DIR:-$ROOT/target}/$target/release/kubectl-meshup"
  [[ "$platform" == windows_* ]] && binary="$binary.exe"
fi
[[ -f "$binary" ]] || die "binary $binary does not exist; build it first or drop --binary"
[[ -x "$binary" ]] || die "binary $binary is not executable"
if [[ "$platform" == linux_* && "$(uname -s)" == Linux ]] && command -v ldd >/dev/null; then
  if ldd "$binary" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    say "$binary is statically linked"
  else
    say "note: $binary is dynamically linked; it needs a libc at least as new as the build machine's"
  fi
fi

# --- the archive ------------------------------------------------------------------------------------------
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}"
readonly epoch
mkdir -p "$out_dir"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

bin_name="kubectl-meshup"
[[ "$platform" == windows_* ]] && bin_name="kubectl-meshup.exe"
install -m 0755 "$binary" "$stage/$bin_name"
install -m 0755 "$ROOT/scripts/kubectl_complete-meshup" "$stage/kubectl_complete-meshup"
install -m 0644 "$ROOT/LICENSE" "$stage/LICENSE"
install -m 0644 "$ROOT/README.md" "$stage/README.md"
members=(LICENSE README.md "$bin_name" kubectl_complete-meshup)
touch -d "@$epoch" "${members[@]/#/$stage/}"

archive_base="kubectl-meshup_${tag}_${platform}"
if [[ "$platform" == windows_* ]]; then
  command -v zip >/dev/null || die "zip not found; install it (apt-get install zip) to package $platform"
  archive="$out_dir/$archive_base.zip"
  rm -f "$archive" "$archive.partial"
  (cd "$stage" && TZ=UTC zip -q -X -9 "$archive.partial" "${members[@]}")
else
  archive="$out_dir/$archive_base.tar.gz"
  rm -f "$archive.partial"
  reproducible=()
  if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    reproducible=(--sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --format=gnu)
  else
    say "note: not GNU tar; the archive is not byte-for-byte reproducible"
  fi
  tar "${reproducible[@]}" -C "$stage" -cf - "${members[@]}" | gzip -9 -n >"$archive.partial"
fi
mv -f "$archive.partial" "$archive"
say "wrote $archive"

# --- checksums.txt: every archive of this tag in --out ----------------------------------------------------
sha256_of() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}
(
  cd "$out_dir"
  shopt -s nullglob
  for file in kubectl-meshup_"${tag}"_*.tar.gz kubectl-meshup_"${tag}"_*.zip; do
    printf '%s  %s\n' "$(sha256_of "$file")" "$file"
  done | LC_ALL=C sort -k2 >checksums.txt.partial
  mv -f checksums.txt.partial checksums.txt
)
say "wrote $out_dir/checksums.txt"

# --- the krew manifest, rendered from .krew.yaml as krew-release-bot does ---------------------------------
# Supported template actions: {{ .TagName }} anywhere, and a line holding only
#   {{addURIAndSha "URL with {{ .TagName }}" .TagName }}
# which becomes `uri: URL` and `sha256: <sum of the archive named like the URL's last segment>`.
checksum_of_archive() {
  awk -v name="$1" '$2 == name { print $1 }' "$out_dir/checksums.txt"
}
add_uri_and_sha='^([[:space:]]*)\{\{ *addURIAndSha +"([^"]+)" +\.TagName *\}\}[[:space:]]*$'
missing=()
rendered="$(mktemp)"
trap 'rm -rf "$stage" "$rendered"' EXIT
{
  echo "# Rendered by $PROGRAM from .krew.yaml for $tag; regenerate it with: $PROGRAM $tag"
  in_header=true
  line_number=0
  while IFS= read -r line || [[ -n "$line" ]]; do
    line_number=$((line_number + 1))
    # The template's own leading comment describes the template, not this manifest.
    if $in_header && [[ "$line" == \#* ]]; then continue; fi
    in_header=false
    if [[ "$line" =~ $add_uri_and_sha ]]; then
      indent="${BASH_REMATCH[1]}"
      uri="${BASH_REMATCH[2]//'{{ .TagName }}'/$tag}"
      file="${uri##*/}"
      sha="$(checksum_of_archive "$file")"
      if [[ -z "$sha" ]]; then
        missing+=("$file")
        # Quoted: unquoted, YAML would read 64 zeros as the number 0.
        sha="\"$PLACEHOLDER_SHA256\""
        echo "${indent}# PLACEHOLDER sha256: $file was not built on this machine; CI builds it"
      fi
      echo "${indent}uri: $uri"
      echo "${indent}sha256: $sha"
      continue
    fi
    line="${line//'{{ .TagName }}'/$tag}"
    [[ "$line" != *'{{'* ]] ||
      die ".krew.yaml line $line_number has a template action this script does not render: $line"
    printf '%s\n' "$line"
  done <"$ROOT/.krew.yaml"
} >"$rendered"

if ((${#missing[@]} > 0)); then
  if ! $allow_missing; then
    die "no archive in $out_dir for: ${missing[*]}. Put the CI-built archives there and rerun, or pass --allow-missing for a sample manifest with placeholder sums"
  fi
  say "warning: placeholder sha256 (zeros) for ${#missing[@]} platform(s) without an archive: ${missing[*]}"
fi
mkdir -p "$(dirname "$manifest")"
mv -f "$rendered" "$manifest"
say "wrote $manifest"
