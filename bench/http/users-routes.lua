-- wrk script of `npm run bench:http`: one users-API route per run, chosen by the first argument.
--   get   MAX_ID           GET /users/<random id in 1..MAX_ID>
--   list                   GET /users?limit=50
--   post  TAG              POST /users with an email unique per request (TAG is unique per run)
--   patch FILE THREADS     PATCH /users/:id with If-Match; FILE has "id version" lines, and each
--                          thread takes every THREADS-th id, round robin, so no two requests in
--                          flight touch the same user; each answer's version is the next If-Match
local counter = 0
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local mode, ids, versions, next_index, tag, max_id

function init(args)
  mode = args[1]
  math.randomseed(os.time() * 100 + (tid or 0))
  if mode == "get" then
    max_id = tonumber(args[2])
  elseif mode == "post" then
    tag = args[2] .. "-" .. tostring(tid or 0)
  elseif mode == "patch" then
    local stride = tonumber(args[3])
    ids, versions, next_index = {}, {}, 1
    local n = 0
    for line in io.lines(args[2]) do
      local id, version = line:match("^(%d+) (%d+)$")
      if id and n % stride == (tid or 0) then
        ids[#ids + 1] = id
        versions[id] = tonumber(version)
      end
      if id then n = n + 1 end
    end
    -- The version a 200 answers with is the one the next PATCH of that user must name. (Not
    -- counting on success when sending: wrk builds a connection's last request and may never
    -- send it, which would put that user one version ahead.) Only defined for this mode, so
    -- the other routes do not pay for wrk reading bodies.
    response = function(status, headers, body)
      if status ~= 200 then return end
      local id, version = body:match('"id":"(%d+)".-"version":(%d+)')
      if id and versions[id] then versions[id] = tonumber(version) end
    end
  end
end

local json = { ["content-type"] = "application/json" }

function request()
  counter = counter + 1
  if mode == "get" then
    return wrk.format("GET", "/users/" .. math.random(1, max_id))
  elseif mode == "list" then
    return wrk.format("GET", "/users?limit=50")
  elseif mode == "post" then
    local body = '{"email":"http-' .. tag .. "-" .. counter .. '@example.com","name":"Bench ' .. counter .. '"}'
    return wrk.format("POST", "/users", json, body)
  else
    local id = ids[next_index]
    next_index = next_index % #ids + 1
    local version = versions[id]
    local headers = { ["content-type"] = "application/json", ["if-match"] = '"' .. version .. '"' }
    return wrk.format("PATCH", "/users/" .. id, headers, '{"name":"Patched ' .. counter .. '"}')
  end
end
