-- wrk: POSTs the Prepares of $PREPARES (hex, one per line) in turn, with the bearer
-- token of $TOKEN; at the end prints one JSON line (requests, seconds, latency
-- percentiles in ms, non-2xx answers and socket errors).
local prepares = {}
local next_index = 1

local function unhex(text)
  return (text:gsub("..", function(pair) return string.char(tonumber(pair, 16)) end))
end

function init(args)
  for line in io.lines(os.getenv("PREPARES")) do
    prepares[#prepares + 1] = unhex(line)
  end
  next_index = 1 + math.random(#prepares) - 1
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")

function request()
  local body = prepares[next_index]
  next_index = next_index % #prepares + 1
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"p50_ms":%.3f,"p99_ms":%.3f,"non_2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
