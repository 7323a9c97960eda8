#!/bin/bash
# Writes small seed inputs for every fuzz target into fuzz/corpus/<target>/ (git-ignored),
# built from the repo's own fixtures and from tiny images made here with qemu-img, tar,
# gzip and openssl. Seeds are named seed-*, so a rerun replaces them and leaves the inputs
# libFuzzer has added alone. Needs no network. Run from anywhere: fuzz/seed.sh
set -euo pipefail

fuzz=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz")
corpus=$fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have() { command -v "$1" >/dev/null 2>&1; }
skip() { echo "seed.sh: $1 not found; skipping its seeds" >&2; }
seed() { # target name < data
    mkdir -p "$corpus/$1"
    cat >"$corpus/$1/seed-$2"
}

# --- OVF descriptors: every .ovf in the repo, with build-tiny's placeholders filled in.
ovfs=()
while IFS= read -r -d '' f; do
    ovfs+=("$f")
done < <(find "$repo/tests/data" "$repo/ovf" -name '*.ovf' -size -64k -print0 2>/dev/null | sort -z)
n=0
for f in "${ovfs[@]}"; do
    n=$((n + 1))
    sed -e 's/@[A-Z0-9_]*SIZE@/65536/g' -e 's/@[A-Z0-9_]*MIB@/1/g' -e 's/@[A-Z0-9_]*@/1/g' "$f" \
        >"$tmp/d$n.ovf"
    seed ovf_descriptor "$(basename "$f")" <"$tmp/d$n.ovf"
done
if [ "$n" -eq 0 ]; then
    printf '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>\n' >"$tmp/d1.ovf"
    seed ovf_descriptor minimal.ovf <"$tmp/d1.ovf"
    n=1
fi
cp "$tmp/d1.ovf" "$tmp/pkg.ovf"

# --- Disk images: qcow2 v2/v3, with a backing file and with data; VMDK sparse, stream and
# descriptor-only. Small clusters and sizes keep the seeds a few KiB.
images=()
if have qemu-img; then
    cd "$tmp"
    qemu-img create -q -f qcow2 -o cluster_size=512 q3.qcow2 1M
    qemu-img create -q -f qcow2 -o cluster_size=512,compat=0.10 q2.qcow2 1M
    qemu-img create -q -f qcow2 -o cluster_size=512 -b q3.qcow2 -F qcow2 qb.qcow2
    cp q3.qcow2 qd.qcow2
    if have qemu-io; then
        qemu-io -f qcow2 -c 'write -P 0xab 0 1k' -c 'write -P 0xcd 512k 512' qd.qcow2 >/dev/null
    fi
    head -c 4096 /dev/zero >raw
    printf 'vmd fuzz seed' | dd of=raw bs=1 seek=1024 conv=notrunc status=none
    qemu-img create -q -f vmdk v.vmdk 1M
    qemu-img convert -O vmdk -o subformat=streamOptimized raw s.vmdk
    qemu-img convert -O vmdk raw vd.vmdk
    qemu-img create -q -f vmdk -o subformat=streamOptimized se.vmdk 1M
    qemu-img create -q -f vmdk -o subformat=monolithicFlat vf.vmdk 64K
    for i in q3.qcow2 q2.qcow2 qb.qcow2 qd.qcow2 v.vmdk vd.vmdk s.vmdk se.vmdk vf.vmdk raw; do
        seed image_inspect "$i" <"$i"
    done
    for i in s.vmdk se.vmdk v.vmdk vd.vmdk; do
        seed vmdk_stream "$i" <"$i"
    done
    # The qcow2 mapping walk: data clusters, compressed clusters, extended L2 entries, and
    # a shared-cluster image (the first 16 L2 entries of qm.qcow2 all pointing at its first
    # data cluster) that the walk refuses.
    head -c 8192 /dev/urandom >noise
    qemu-img convert -q -f raw -O qcow2 -o cluster_size=512 noise qm.qcow2
    qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=512 raw qc.qcow2
    qemu-img create -q -f qcow2 -o cluster_size=16k,extended_l2=on qx.qcow2 1M
    cp qm.qcow2 qs.qcow2
    l1=$(od -An -tu8 --endian=big -j 40 -N 8 qs.qcow2 | tr -d ' ')
    l2=$(($(od -An -tu8 --endian=big -j "$l1" -N 8 qs.qcow2 | tr -d ' ') & 0xfffffffffe00))
    first=$(dd if=qs.qcow2 bs=1 skip="$l2" count=8 status=none | od -An -tx1 | tr -d ' \n')
    for j in $(seq 1 15); do
        printf "$(echo "$first" | sed 's/../\\x&/g')" |
            dd of=qs.qcow2 bs=1 seek=$((l2 + 8 * j)) conv=notrunc status=none
    done
    for i in q3.qcow2 q2.qcow2 qd.qcow2 qm.qcow2 qc.qcow2 qx.qcow2 qs.qcow2; do
        seed qcow2_map "$i" <"$i"
    done
    images=(qd.qcow2)
    cd - >/dev/null
else
    skip qemu-img
fi
printf 'QFI\xfb' | seed image_inspect qcow2-magic
printf 'KDMV' | seed image_inspect vmdk-magic

# --- Manifests: the fixture, and ones over this run's files in each digest, with CRLF and BOM.
seed manifest fixture.mf <"$repo/tests/data/cert/package.mf"
printf 'a\n' >"$tmp/a.txt"
mf() { # digest files... (OVF form: SHA256(name)= hex)
    local alg=$1
    shift
    (cd "$tmp" && "${alg}sum" --tag "$@") | sed 's/^\([A-Z0-9]*\) (\(.*\)) = /\1(\2)= /'
}
mf sha256 pkg.ovf "${images[@]}" >"$tmp/pkg.mf"
seed manifest sha256.mf <"$tmp/pkg.mf"
mf sha1 pkg.ovf a.txt | seed manifest sha1.mf
mf sha512 a.txt | seed manifest sha512.mf
printf '\xef\xbb\xbfSHA256(x.ovf)= %s\r\n\r\n' "$(sha256sum "$tmp/a.txt" | cut -d' ' -f1)" |
    seed manifest bom-crlf.mf

# --- OVAs: the descriptor first, then the manifest and the images, in ustar, GNU (with a
# long name) and PAX layouts.
(
    cd "$tmp"
    long=$(printf 'disk-%0100d.img' 1)
    cp a.txt "$long"
    members=(pkg.ovf pkg.mf "${images[@]}")
    opts=(--owner=0 --group=0 --numeric-owner --mtime=@0 --no-recursion --blocking-factor=1)
    tar -cf ustar.ova --format=ustar "${opts[@]}" "${members[@]}"
    tar -cf gnu.ova --format=gnu "${opts[@]}" pkg.ovf pkg.mf "$long"
    tar -cf pax.ova --format=pax --pax-option=delete=atime,delete=ctime "${opts[@]}" \
        pkg.ovf "$long"
    tar -cf ovf-only.ova --format=ustar "${opts[@]}" pkg.ovf
)
for t in ustar gnu pax ovf-only; do
    seed tar_index "$t.ova" <"$tmp/$t.ova"
done

# --- Units: "value 0xff units", as the units target splits its input.
i=0
for s in '1\xffbyte' '2\xffbyte * 2^20' '10\xffbyte*10^3' ' 4 \xffbyte * 1024 * 2^10' \
    '3\xffGigaBytes' '7\xffMB' '1\xffbit' '1\xffbyte / 2' '10G' '512 MiB' '1k' '0B' \
    '18446744073709551615\xffbyte * 2'; do
    i=$((i + 1))
    printf '%b' "$s" | seed units "$i"
done

# --- gzip: the first byte picks the chunk size (x * 16 + 1), the rest is the gzip file.
gzip -9nc "$tmp/pkg.ovf" >"$tmp/one.gz"
{ printf '\x02'; cat "$tmp/one.gz"; } | seed gzip_chunks one-member
{ printf '\x00'; gzip -nc "$tmp/a.txt"; gzip -nc "$tmp/a.txt"; } | seed gzip_chunks two-members
{ printf '\xff'; head -c 100000 /dev/zero | gzip -9nc; } | seed gzip_chunks zeros
{ printf '\x10'; cat "$tmp/one.gz"; printf '\0\0\0\0'; } | seed gzip_chunks trailing-zeros
{ printf '\x01'; head -c 10 "$tmp/one.gz"; } | seed gzip_chunks truncated

# --- Certificates: the fixtures, renamed to sign m.mf as the cert target expects (their
# signatures then fail), and fresh ones whose signature over "m" verifies, so that mutations
# of the certificates reach the code after the signature check.
for f in "$repo"/tests/data/cert/*.cert; do
    sed '1s/(package\.mf)/(m.mf)/' "$f" | seed cert "$(basename "$f")"
done
if have openssl; then
    (
        cd "$tmp"
        printf 'm' >m
        cat >ossl.cnf <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign
[signer_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
CNF
        req() { openssl req -new -config ossl.cnf -sha256 -days 36500 "$@" 2>/dev/null; }
        sig() { # digest key
            printf '%s(m.mf)= ' "$(echo "$1" | tr '[:lower:]' '[:upper:]')"
            openssl dgst "-$1" -sign "$2" -binary m | od -An -v -tx1 | tr -d ' \n'
            echo
        }
        openssl ecparam -name prime256v1 -genkey -noout -out p256.key
        req -x509 -key p256.key -subj "/CN=fuzz p256" -extensions signer_ext -out p256.pem
        { sig sha256 p256.key; cat p256.pem; } >p256.cert
        openssl ecparam -name secp384r1 -genkey -noout -out p384.key
        req -x509 -key p384.key -subj "/CN=fuzz p384" -extensions signer_ext -out p384.pem
        { sig sha512 p384.key; cat p384.pem; } >p384.cert
        openssl genrsa -out rsa.key 2048 2>/dev/null
        req -x509 -key rsa.key -subj "/O=fuzz/CN=fuzz rsa" -extensions signer_ext -out rsa.pem
        { sig sha1 rsa.key; cat rsa.pem; } >rsa.cert
        req -x509 -key p256.key -subj "/CN=fuzz ca" -extensions ca_ext -out ca.pem
        req -key rsa.key -subj "/CN=fuzz leaf" -out leaf.csr
        openssl x509 -req -in leaf.csr -CA ca.pem -CAkey p256.key -set_serial 2 \
            -days 36500 -extfile ossl.cnf -extensions signer_ext -out leaf.pem 2>/dev/null
        { sig sha256 rsa.key; cat leaf.pem ca.pem; } >chain.cert
    )
    for c in p256 p384 rsa chain; do
        seed cert "fresh-$c.cert" <"$tmp/$c.cert"
    done
else
    skip openssl
fi

echo "seed.sh: seeds written under $corpus"
