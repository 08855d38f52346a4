#!/usr/bin/env python3
"""Writes N distinct ILP Prepares (hex, one per line) that riptide-loadgen's sink
fulfills: each one's data begins with its fulfillment, and its condition is that
fulfillment's SHA-256. For benches/wrk.sh: wrk sends them in turn.
Usage: prepares.py COUNT DESTINATION EXPIRES_IN_S > file"""
import datetime
import hashlib
import os
import sys


def length_prefix(length):
    if length < 128:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def prepare(amount, expires_at, fulfillment, destination):
    condition = hashlib.sha256(fulfillment).digest()
    data = fulfillment + b"wrk"
    address = destination.encode()
    body = (
        amount.to_bytes(8, "big")
        + expires_at.encode()
        + condition
        + length_prefix(len(address))
        + address
        + length_prefix(len(data))
        + data
    )
    return bytes([12]) + length_prefix(len(body)) + body


def main():
    count, destination, expires_in_s = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in_s)
    expires_at = expiry.strftime("%Y%m%d%H%M%S") + "%03d" % (expiry.microsecond // 1000)
    for _ in range(count):
        print(prepare(1, expires_at, os.urandom(32), destination).hex())


main()
