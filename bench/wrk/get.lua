-- GET WRK_PATH, with "Authorization: Bearer WRK_TOKEN" or "Cookie: WRK_COOKIE" when set.
dofile(os.getenv("WRK_DIR") .. "/common.lua")

local path = os.getenv("WRK_PATH") or "/"
local headers = {}
if os.getenv("WRK_TOKEN") then
  headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
end
if os.getenv("WRK_COOKIE") then
  headers["Cookie"] = os.getenv("WRK_COOKIE")
end

function request()
  return wrk.format("GET", path, headers)
end
