#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes a throwaway PKI for the TLS tests in DIR:
#   ca.pem            the test CA (trusted by the client through ca_file)
#   server.{pem,key}  localhost, signed by the CA            -> accepted
#   wronghost.{pem,key} other.invalid, signed by the CA      -> wrong host name
#   expired.{pem,key} localhost, signed by the CA, expired   -> expired
#   rogue.{pem,key}   localhost, signed by another CA        -> not trusted
#   ipsan.{pem,key}   IP:127.0.0.1 and IP:::1 only           -> https://127.0.0.1, https://[::1]
#   otherip.{pem,key} IP:10.9.8.7, DNS:example.invalid       -> address does not match
#   cnonly.{pem,key}  CN=localhost and no subjectAltName     -> refused (no SAN)
# EC P-256 keys: quick to make.
set -euo pipefail
dir=$1
cd "$dir"
ossl() { openssl "$@" 2>/dev/null; }
key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

mkca() { # name
    key "$1.key"
    ossl req -x509 -new -key "$1.key" -sha256 -days 30 -subj "/CN=libsegops test $1" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -out "$1.pem"
}
mkca ca
mkca rogueca

cat > ext.cnf <<'CNF'
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = @alt
[alt]
DNS.1 = localhost
[wrong]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.invalid
[ipsan]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:::1
[otherip]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:10.9.8.7, DNS:example.invalid
[cnonly]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
CNF

leaf() { # name cn ca section
    key "$1.key"
    ossl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    ossl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 30 \
        -sha256 -extfile ext.cnf -extensions "$4" -out "$1.pem"
}
leaf server localhost ca leaf
leaf wronghost other.invalid ca wrong
leaf rogue localhost rogueca leaf
leaf ipsan 127.0.0.1 ca ipsan
leaf otherip 127.0.0.1 ca otherip
leaf cnonly localhost ca cnonly

# expired: `openssl ca` is the tool that takes explicit validity dates
mkdir -p cadb
: > cadb/index.txt
echo 1000 > cadb/serial
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = cadb/index.txt
serial = cadb/serial
new_certs_dir = cadb
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[any]
commonName = supplied
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
CNF
key expired.key
ossl req -new -key expired.key -subj "/CN=localhost" -out expired.csr
ossl ca -batch -notext -config ca.cnf -startdate 20200101000000Z -enddate 20200201000000Z \
    -in expired.csr -out expired.pem
test -s server.pem && test -s wronghost.pem && test -s rogue.pem && test -s expired.pem
test -s ipsan.pem && test -s otherip.pem && test -s cnonly.pem
