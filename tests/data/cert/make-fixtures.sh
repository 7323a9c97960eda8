#!/bin/sh
# Regenerates the .cert fixtures that src/ovf/cert/tests.rs reads with include_bytes!.
# Needs the openssl CLI. Private keys stay in a temporary directory and are not kept:
# the tests only verify. Certificates are valid for 100 years; tests pass a fixed `now`.
# Run from this directory: ./make-fixtures.sh
set -eu
out=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

cat >openssl.cnf <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[signer_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
CNF

days=36500
printf 'SHA256(package.ovf)= 3c8e1a5b0d7f2e9a4c6b8d0f1e3a5c7b9d1f3e5a7c9b1d3f5e7a9c1b3d5f7e9a\nSHA256(package-disk1.vmdk)= 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\n' >"$out/package.mf"

sig_hex() { # digest key
    openssl dgst "-$1" -sign "$2" -binary "$out/package.mf" | od -An -v -tx1 | tr -d ' \n'
}
cert_file() { # name digest-option digest-label key cert...
    name=$1 opt=$2 label=$3 key=$4
    shift 4
    { printf '%s(package.mf)= %s\n' "$label" "$(sig_hex "$opt" "$key")"; cat "$@"; } >"$out/$name"
}
self_signed() { # key cert subject
    openssl req -x509 -new -key "$1" -out "$2" -subj "$3" -days $days \
        -config openssl.cnf -extensions signer_ext -sha256
}

openssl genrsa -out rsa.key 2048 2>/dev/null
self_signed rsa.key rsa.pem "/O=vmd tests/CN=vmd test signer"
cert_file rsa-sha256.cert sha256 SHA256 rsa.key rsa.pem
cert_file rsa-sha1.cert sha1 SHA1 rsa.key rsa.pem
cert_file rsa-sha512.cert sha512 SHA512 rsa.key rsa.pem

openssl genrsa -out rsa1024.key 1024 2>/dev/null
self_signed rsa1024.key rsa1024.pem "/CN=vmd short key"
cert_file rsa1024.cert sha256 SHA256 rsa1024.key rsa1024.pem

openssl genrsa -out rsa512.key 512 2>/dev/null
self_signed rsa512.key rsa512.pem "/CN=vmd tiny key"
cert_file rsa512.cert sha256 SHA256 rsa512.key rsa512.pem

openssl ecparam -name prime256v1 -genkey -noout -out p256.key
self_signed p256.key p256.pem "/CN=vmd p256 signer"
cert_file p256.cert sha256 SHA256 p256.key p256.pem

openssl ecparam -name secp384r1 -genkey -noout -out p384.key
self_signed p384.key p384.pem "/CN=vmd p384 signer"
cert_file p384.cert sha512 SHA512 p384.key p384.pem

# A CA and a signer it issued; the .cert carries both, ca.pem is the caller's anchor.
openssl genrsa -out ca.key 2048 2>/dev/null
openssl req -x509 -new -key ca.key -out ca.pem -subj "/O=vmd tests/CN=vmd test CA" \
    -days $days -config openssl.cnf -extensions ca_ext -sha256
openssl genrsa -out leaf.key 2048 2>/dev/null
openssl req -new -key leaf.key -out leaf.csr -subj "/O=vmd tests/CN=vmd chained signer" \
    -config openssl.cnf
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days $days \
    -extfile openssl.cnf -extensions signer_ext -sha256 -out leaf.pem 2>/dev/null
cert_file chain.cert sha256 SHA256 leaf.key leaf.pem ca.pem
cp ca.pem "$out/ca.pem"

# Same CA name, another key: an anchor that must not vouch for chain.cert.
openssl genrsa -out impostor.key 2048 2>/dev/null
openssl req -x509 -new -key impostor.key -out "$out/impostor-ca.pem" \
    -subj "/O=vmd tests/CN=vmd test CA" -days $days -config openssl.cnf -extensions ca_ext -sha256

# A signer issued by chain.cert's signer, which is no CA: the path must not be accepted.
openssl genrsa -out sub.key 2048 2>/dev/null
openssl req -new -key sub.key -out sub.csr -subj "/O=vmd tests/CN=vmd sub signer" \
    -config openssl.cnf
openssl x509 -req -in sub.csr -CA leaf.pem -CAkey leaf.key -set_serial 3 -days $days \
    -extfile openssl.cnf -extensions signer_ext -sha256 -out sub.pem 2>/dev/null
cert_file chain-noca.cert sha256 SHA256 sub.key sub.pem leaf.pem ca.pem

# CA -> intermediate valid for one day -> signer valid 100 years: expired in the middle.
openssl genrsa -out inter.key 2048 2>/dev/null
openssl req -new -key inter.key -out inter.csr -subj "/O=vmd tests/CN=vmd short intermediate" \
    -config openssl.cnf
openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key -set_serial 4 -days 1 \
    -extfile openssl.cnf -extensions ca_ext -sha256 -out inter.pem 2>/dev/null
openssl genrsa -out late.key 2048 2>/dev/null
openssl req -new -key late.key -out late.csr -subj "/O=vmd tests/CN=vmd late signer" \
    -config openssl.cnf
openssl x509 -req -in late.csr -CA inter.pem -CAkey inter.key -set_serial 5 -days $days \
    -extfile openssl.cnf -extensions signer_ext -sha256 -out late.pem 2>/dev/null
cert_file chain-expired-intermediate.cert sha256 SHA256 late.key late.pem inter.pem ca.pem
