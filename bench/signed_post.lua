-- wrk script: signed webhook POSTs, counted by status class.
-- Arguments (after `--`): the file of requests, one per line as "<hex HMAC-SHA256 of body>\t<body>", and the
-- shared token that the seed receiver compares. Each thread starts at its own line, so bodies differ at once.
-- At the end it prints one line, "BENCH_JSON {...}", with the latency percentiles (microseconds) and the counts.

local sigs, bodies, n, i = {}, {}, 0, 0
local token = ""
c2, c3, c4, c5 = 0, 0, 0, 0
local threads = {}
setup_count = 0
thread_no = 1

function setup(thread)
  setup_count = setup_count + 1
  thread:set("thread_no", setup_count)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    n = n + 1
    sigs[n] = line:sub(1, tab - 1)
    bodies[n] = line:sub(tab + 1)
  end
  token = args[2] or ""
  i = (thread_no * 7919) % n
end

function request()
  i = i % n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Signature"] = sigs[i],
    ["Acme-Webhook-Token"] = token,
  }
  return wrk.format("POST", nil, headers, bodies[i])
end

function response(status, headers, body)
  if status < 300 then c2 = c2 + 1
  elseif status < 400 then c3 = c3 + 1
  elseif status < 500 then c4 = c4 + 1
  else c5 = c5 + 1 end
end

function done(summary, latency, requests)
  local s2, s3, s4, s5 = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    s2 = s2 + t:get("c2")
    s3 = s3 + t:get("c3")
    s4 = s4 + t:get("c4")
    s5 = s5 + t:get("c5")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"mean_us":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"max_us":%d,"c2xx":%d,"c3xx":%d,"c4xx":%d,"c5xx":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, s2, s3, s4, s5, e.connect, e.read, e.write,
    e.status, e.timeout))
end
