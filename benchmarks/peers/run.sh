#!/usr/bin/env bash
# Measure memollm against the libraries users would pick instead, in one run on this machine,
# and regenerate the peer section and charts of docs/benchmarks.md.
#
#   bash benchmarks/peers/run.sh            (about 10 minutes; QUICK=1 for a smoke run)
#
# Peers live in benchmarks/peers/.venv, never in memollm's own dependencies. Needs
# redis-server (apt-get install redis-server); wrk is used for the proxy load when installed.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
export PIP_DISABLE_PIP_VERSION_CHECK=1

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet -r requirements.txt -e "$root[semantic,server,langchain,litellm,openai]"
.venv/bin/python "$root/scripts/fetch_test_model.py" >/dev/null
py=.venv/bin/python

if [ "${QUICK:-}" = 1 ]; then
  calls=100; rounds=10; sizes="1000"; seconds=2; repeats=1
else
  calls=500; rounds=60; sizes="1000 10000 100000"; seconds=5; repeats=3
fi
# Exact-hit systems run $repeats times in rotation and the report keeps each one's best
# median: a neighbour's burst on this shared machine then cannot decide a ranking.

command -v redis-server >/dev/null || { echo "redis-server is needed: apt-get install redis-server" >&2; exit 1; }
scratch="$(mktemp -d)"
port="$($py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --port "$port" --bind 127.0.0.1 --dir "$scratch" --save '' --appendonly no \
  --daemonize yes --pidfile "$scratch/redis.pid" >/dev/null
trap 'kill "$(cat "$scratch/redis.pid")" 2>/dev/null || true; rm -rf "$scratch"' EXIT
redis="redis://127.0.0.1:$port/0"
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

out=results.jsonl
: > "$out"
rm -rf .cache/scratch

echo "== 1. exact hit in process" >&2
for _ in $(seq "$repeats"); do
for system in "cachetools.cached [floor]" "memollm" "memollm (async)" "GPTCache exact (map; key: prompt only)" \
              "aiocache memory (async)" "cashews mem:// (async)" "LangChain InMemoryCache (chat model)" \
              "LiteLLM local cache (completion)" "LangChain + memollm MemoLLMCache (chat model)" \
              "LiteLLM + memollm cache (completion)" "memollm.openai.wrap (client.chat.completions.create)" \
              "memollm on a function calling openai"; do
  $py exact_memory.py "$system" --out "$out" --calls "$calls" --rounds "$rounds" 2>&1 | grep -v Warning >&2 || true
done
done

echo "== 2. exact hit from Redis" >&2
for _ in $(seq "$repeats"); do
for system in "redis-py GET + msgpack [floor]" "redis-py async GET + msgpack [floor]" "memollm" "memollm (async)" \
              "cashews redis:// (async)" "aiocache redis (async)" "LangChain RedisCache" "LiteLLM redis cache" \
              "LangChain + memollm MemoLLMCache (Redis tier)" "LiteLLM + memollm cache (Redis tier)"; do
  redis-cli -p "$port" flushall >/dev/null
  $py exact_redis.py "$system" --redis "$redis" --out "$out" --calls "$calls" --rounds "$rounds" 2>&1 \
    | grep -v Warning >&2 || true
done
done

echo "== 3. semantic" >&2
for size in $sizes; do
  for system in "memollm" "GPTCache sqlite+faiss"; do
    $py semantic.py "$system" --mode speed --size "$size" --out "$out" 2>&1 | grep -v -i warn >&2 || true
  done
done
for system in "memollm" "GPTCache sqlite+faiss"; do
  $py semantic.py "$system" --mode quality --out "$out" 2>&1 | grep -v -i warn >&2 || true
done
rm -rf .cache/scratch

echo "== 4. proxy" >&2
$py proxy.py all --out "$out" --seconds "$seconds" 2>&1 | grep -v -i warn >&2 || true

$py report.py "$out" --docs "$root/docs"
