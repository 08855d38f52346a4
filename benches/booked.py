"""Checks, after a load run, that every Fulfill was booked exactly in the ledger's
own balances: the paying account was debited, and the paid account credited, by
exactly what riptide counted fulfilled from the loader (warm-up included), and
nothing is pending on either. It reads /metrics and /v1/balances until two
readings, more than a second apart (the shards publish their counters once a
second), agree and nothing is pending (posts may still be on their way after the
last reply), for 15 s at most.

Usage: python3 benches/booked.py ADMIN_URL TOKEN PAYER PAYEE [BEFORE_JSON]
  PAYER, PAYEE: kind:name of an account of /v1/balances (peer:loader,
  receiving:shop); BEFORE_JSON: /v1/balances from before the run, when the ledger
  already held earlier runs' transfers. Prints one line; exits 1 when not exact."""
import json
import re
import sys
import time
import urllib.request

admin, token, payer, payee = sys.argv[1:5]
before_path = sys.argv[5] if len(sys.argv) > 5 else None


def get(path):
    request = urllib.request.Request(admin + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def accounts(document):
    return {(row["kind"], row["name"]): row for row in json.loads(document)["accounts"]}


def reading():
    metrics = get("/metrics")
    pattern = r'^riptide_fulfilled_amount_total\{peer="loader"\} (\d+)'
    fulfilled = sum(int(m.group(1)) for m in re.finditer(pattern, metrics, re.M))
    return fulfilled, accounts(get("/v1/balances"))


before = accounts(open(before_path).read()) if before_path else {}
key = lambda text: tuple(text.split(":", 1))


def moved(rows, account, field):
    start = int(before[account][field]) if account in before else 0
    return int(rows[account][field]) - start


last = None
for _ in range(12):
    fulfilled, rows = reading()
    pending = [name for (kind, name), row in rows.items()
               if (kind, name) in (key(payer), key(payee))
               and (row["debits_pending"] != "0" or row["credits_pending"] != "0")]
    now = (fulfilled, moved(rows, key(payer), "debits_posted"), moved(rows, key(payee), "credits_posted"))
    if now == last and not pending:
        break
    last = now
    time.sleep(1.2)
paid, received = now[1], now[2]
wrong_way = moved(rows, key(payer), "credits_posted") + moved(rows, key(payee), "debits_posted")
exact = fulfilled > 0 and paid == fulfilled and received == fulfilled and wrong_way == 0 and not pending
print(f"# booked in the ledger: {fulfilled} fulfilled, {payer} paid {paid}, {payee} received {received}, "
      f"the other way {wrong_way}, pending {pending or 0}: {'exact' if exact else 'NOT EXACT'}")
sys.exit(0 if exact else 1)
