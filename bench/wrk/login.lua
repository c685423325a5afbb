-- POST a sign-in to WRK_PATH, cycling through accounts.
--   WRK_USERS      "name:password,..."  valid sign-ins
--   WRK_BAD_USERS  "name:password,..."  wrong ones (a flood); optional
--   WRK_VALID_EVERY  with WRK_BAD_USERS: every Nth request is a valid one (default 10)
--   WRK_FORMAT     "json" (default) or "form" (OAuth2 password form, FastAPI-Users)
--   WRK_XFF        "bad" to send X-Forwarded-For 198.51.100.<n> on the wrong ones and
--                  203.0.113.<n> on the valid ones (the server must trust 127.0.0.1)
--   WRK_XFF_BAD    with WRK_XFF: another prefix for the wrong ones' addresses, e.g. "192.0.2."
dofile(os.getenv("WRK_DIR") .. "/common.lua")

local function split(list)
  local out = {}
  for pair in string.gmatch(list or "", "[^,]+") do
    local name, password = string.match(pair, "^([^:]+):(.*)$")
    table.insert(out, { name, password })
  end
  return out
end

local path = os.getenv("WRK_PATH") or "/auth/login"
local form = os.getenv("WRK_FORMAT") == "form"
local good = split(os.getenv("WRK_USERS"))
local bad = split(os.getenv("WRK_BAD_USERS"))
local every = tonumber(os.getenv("WRK_VALID_EVERY") or "10")
local xff = os.getenv("WRK_XFF") == "bad"
local bad_prefix = os.getenv("WRK_XFF_BAD") or "198.51.100."
local n = 0

local function body(account)
  if form then
    return "username=" .. account[1] .. "&password=" .. account[2]:gsub(" ", "+")
  end
  return string.format('{"username": "%s", "password": "%s"}', account[1], account[2])
end

function request()
  n = n + 1
  local valid = #bad == 0 or n % every == 0
  local list = valid and good or bad
  local account = list[(n % #list) + 1]
  local headers = {}
  headers["Content-Type"] = form and "application/x-www-form-urlencoded" or "application/json"
  if xff then
    headers["X-Forwarded-For"] = (valid and "203.0.113." or bad_prefix) .. ((n % 200) + 1)
  end
  return wrk.format("POST", path, headers, body(account))
end
