-- The dissector's logic. The tables it reads (POS_FIELDS, HOST_FIELDS, names, ports) are generated above from
-- acqsim's wire/ specs, so a field's format is written down in one place only (wire/specs.py).
--
-- POS link:  LEN (2, big-endian) | TPDU (5) | header (6, BCD) | MTI (2, BCD) | bitmap (8) | fields
-- host link: LEN (2, big-endian) | MTI (4 ASCII) | bitmap (16 hex ASCII, a second 16 when bit 1 is set) | fields

local pos = Proto("acqsim_pos", "acqsim POS link (CUP POS: TPDU, header, ISO 8583 body)")
local host = Proto("acqsim_host", "acqsim host link (ISO 8583:1987 ASCII)")

local LENGTH_PREFIX_LEN = 2

local function common_fields(abbr)
    local f = {
        length = ProtoField.uint16(abbr .. ".length", "Length"),
        mti = ProtoField.string(abbr .. ".mti", "MTI"),
        bitmap = ProtoField.string(abbr .. ".bitmap", "Bitmap"),
    }
    return f
end

local function field_table(abbr, specs)
    local pf = {}
    for number, spec in pairs(specs) do
        pf[number] = ProtoField.string(abbr .. ".f" .. number, string.format("%d %s", number, spec.name))
    end
    return pf
end

local pos_f = common_fields("acqsim_pos")
pos_f.tpdu = ProtoField.bytes("acqsim_pos.tpdu", "TPDU")
pos_f.tpdu_id = ProtoField.uint8("acqsim_pos.tpdu.id", "TPDU id", base.HEX)
pos_f.tpdu_dst = ProtoField.string("acqsim_pos.tpdu.dst", "TPDU destination")
pos_f.tpdu_src = ProtoField.string("acqsim_pos.tpdu.src", "TPDU source")
pos_f.header = ProtoField.bytes("acqsim_pos.header", "Header")
pos_f.app_type = ProtoField.string("acqsim_pos.header.app_type", "Application type")
pos_f.software_version = ProtoField.string("acqsim_pos.header.software_version", "Software version")
pos_f.terminal_status = ProtoField.string("acqsim_pos.header.terminal_status", "Terminal status")
pos_f.processing_request = ProtoField.string("acqsim_pos.header.processing_request", "Processing request")
pos_f.reserved = ProtoField.string("acqsim_pos.header.reserved", "Reserved")
local pos_field_pf = field_table("acqsim_pos", POS_FIELDS)

local host_f = common_fields("acqsim_host")
local host_field_pf = field_table("acqsim_host", HOST_FIELDS)

local function register_fields(proto, fixed, numbered)
    local list = {}
    for _, pf in pairs(fixed) do
        list[#list + 1] = pf
    end
    for _, pf in pairs(numbered) do
        list[#list + 1] = pf
    end
    proto.fields = list
end
register_fields(pos, pos_f, pos_field_pf)
register_fields(host, host_f, host_field_pf)

local pos_malformed = ProtoExpert.new("acqsim_pos.malformed", "Malformed acqsim POS frame",
    expert.group.MALFORMED, expert.severity.ERROR)
local host_malformed = ProtoExpert.new("acqsim_host.malformed", "Malformed acqsim host frame",
    expert.group.MALFORMED, expert.severity.ERROR)
pos.experts = { pos_malformed }
host.experts = { host_malformed }

-- Field numbers present in a bitmap given as a ByteArray (bit 1 = the most significant bit of byte 0).
local function present_fields(bitmap)
    local numbers = {}
    for i = 0, bitmap:len() - 1 do
        local byte = bitmap:get_index(i)
        for bit = 0, 7 do
            if bit32.band(byte, bit32.rshift(0x80, bit)) ~= 0 then
                numbers[#numbers + 1] = i * 8 + bit + 1
            end
        end
    end
    return numbers
end

-- Read one field at offset: returns its value as text and the number of bytes it takes (length included).
local function read_field(tvb, offset, number, spec)
    local count = spec.max
    local len_bytes = spec.len_type
    if len_bytes > 0 then
        if offset + len_bytes > tvb:len() then
            error(string.format("field %d: length needs %d bytes at offset %d", number, len_bytes, offset), 0)
        end
        local len_range = tvb:range(offset, len_bytes)
        local len_text = spec.len_enc == "ascii" and len_range:string() or len_range:bytes():tohex()
        count = tonumber(len_text)
        if count == nil or count > spec.max then
            error(string.format("field %d: length %s at offset %d is not 0..%d", number, len_text, offset, spec.max), 0)
        end
    end
    local size = count
    if spec.nibbles then
        size = math.floor((count + 1) / 2)
    end
    local data_offset = offset + len_bytes
    if data_offset + size > tvb:len() then
        error(string.format("field %d: needs %d bytes at offset %d, %d left", number, size, data_offset,
            tvb:len() - data_offset), 0)
    end
    if size == 0 then
        return "", len_bytes
    end
    local data = tvb:range(data_offset, size)
    if spec.enc == "ascii" then
        return data:string(), len_bytes + size
    end
    local hex = data:bytes():tohex()
    if spec.nibbles and #hex > count then
        hex = spec.pad == "left" and hex:sub(2) or hex:sub(1, count)
    end
    if spec.track then
        hex = hex:gsub("D", "=")
    end
    return hex, len_bytes + size
end

local function explain(number, value)
    if number == 3 and PROCESSING_NAMES[value] then
        return PROCESSING_NAMES[value]
    elseif number == 39 and RESPONSE_MEANINGS[value] then
        return RESPONSE_MEANINGS[value]
    end
    return nil
end

-- The fields after the bitmap; returns a summary table (MTI, 3, 11, 39, 41) for the Info column.
local function dissect_fields(tvb, offset, tree, numbers, specs, field_pf, summary)
    for _, number in ipairs(numbers) do
        if number ~= 1 then -- bit 1 announces the secondary bitmap, read with the primary
            local spec = specs[number]
            if spec == nil then
                error(string.format("field %d at offset %d is not in acqsim's spec for this link", number, offset), 0)
            end
            local value, size = read_field(tvb, offset, number, spec)
            local item = tree:add(field_pf[number], tvb:range(offset, math.max(size, 1)), value)
            local meaning = explain(number, value)
            if meaning then
                item:append_text(" (" .. meaning .. ")")
            end
            summary[number] = value
            offset = offset + size
        end
    end
    return offset
end

local function info_text(mti, summary)
    local parts = { mti, MTI_NAMES[mti] or "" }
    if summary[3] and PROCESSING_NAMES[summary[3]] then
        parts[#parts + 1] = PROCESSING_NAMES[summary[3]]
    end
    if summary[41] then
        parts[#parts + 1] = "T" .. summary[41]
    end
    if summary[11] then
        parts[#parts + 1] = "STAN " .. summary[11]
    end
    if summary[39] then
        parts[#parts + 1] = "39=" .. summary[39] .. " " .. (RESPONSE_MEANINGS[summary[39]] or "")
    end
    return table.concat(parts, " ")
end

local function set_info(pinfo, text)
    -- Several frames may share one TCP segment: list them all.
    local current = tostring(pinfo.cols.info)
    if pinfo.private["acqsim_seen"] == "1" then
        pinfo.cols.info:set(current .. " | " .. text)
    else
        pinfo.cols.info:set(text)
        pinfo.private["acqsim_seen"] = "1"
    end
end

local function dissect_pos_frame(tvb, pinfo, tree)
    pinfo.cols.protocol = "acqsim POS"
    local subtree = tree:add(pos, tvb:range(0, tvb:len()))
    subtree:add(pos_f.length, tvb:range(0, LENGTH_PREFIX_LEN))
    local ok, err = pcall(function()
        local offset = LENGTH_PREFIX_LEN
        if tvb:len() < offset + TPDU_LEN + HEADER_LEN + 10 then
            error(string.format("frame of %d bytes is too short for TPDU, header, MTI and bitmap", tvb:len()), 0)
        end
        local tpdu = subtree:add(pos_f.tpdu, tvb:range(offset, TPDU_LEN))
        tpdu:add(pos_f.tpdu_id, tvb:range(offset, 1))
        tpdu:add(pos_f.tpdu_dst, tvb:range(offset + 1, 2), tvb:range(offset + 1, 2):bytes():tohex())
        tpdu:add(pos_f.tpdu_src, tvb:range(offset + 3, 2), tvb:range(offset + 3, 2):bytes():tohex())
        offset = offset + TPDU_LEN
        local digits = tvb:range(offset, HEADER_LEN):bytes():tohex()
        local header = subtree:add(pos_f.header, tvb:range(offset, HEADER_LEN))
        local app = header:add(pos_f.app_type, tvb:range(offset, 1), digits:sub(1, 2))
        if APP_TYPES[digits:sub(1, 2)] then
            app:append_text(" (" .. APP_TYPES[digits:sub(1, 2)] .. ")")
        end
        header:add(pos_f.software_version, tvb:range(offset + 1, 1), digits:sub(3, 4))
        header:add(pos_f.terminal_status, tvb:range(offset + 2, 1), digits:sub(5, 5))
        header:add(pos_f.processing_request, tvb:range(offset + 2, 1), digits:sub(6, 6))
        header:add(pos_f.reserved, tvb:range(offset + 3, 3), digits:sub(7, 12))
        offset = offset + HEADER_LEN
        local mti = tvb:range(offset, 2):bytes():tohex()
        local mti_item = subtree:add(pos_f.mti, tvb:range(offset, 2), mti)
        if MTI_NAMES[mti] then
            mti_item:append_text(" (" .. MTI_NAMES[mti] .. ")")
        end
        offset = offset + 2
        local bitmap = tvb:range(offset, 8):bytes()
        subtree:add(pos_f.bitmap, tvb:range(offset, 8), bitmap:tohex())
        offset = offset + 8
        local summary = {}
        dissect_fields(tvb, offset, subtree, present_fields(bitmap), POS_FIELDS, pos_field_pf, summary)
        set_info(pinfo, info_text(mti, summary))
    end)
    if not ok then
        subtree:add_proto_expert_info(pos_malformed, tostring(err))
        set_info(pinfo, "malformed: " .. tostring(err))
    end
    return tvb:len()
end

local function dissect_host_frame(tvb, pinfo, tree)
    pinfo.cols.protocol = "acqsim host"
    local subtree = tree:add(host, tvb:range(0, tvb:len()))
    subtree:add(host_f.length, tvb:range(0, LENGTH_PREFIX_LEN))
    local ok, err = pcall(function()
        local offset = LENGTH_PREFIX_LEN
        if tvb:len() < offset + 4 + 16 then
            error(string.format("frame of %d bytes is too short for MTI and bitmap", tvb:len()), 0)
        end
        local mti = tvb:range(offset, 4):string()
        local mti_item = subtree:add(host_f.mti, tvb:range(offset, 4), mti)
        if MTI_NAMES[mti] then
            mti_item:append_text(" (" .. MTI_NAMES[mti] .. ")")
        end
        offset = offset + 4
        local bitmap_hex = tvb:range(offset, 16):string()
        if not bitmap_hex:match("^%x+$") then
            error(string.format("bitmap at offset %d is not 16 hex characters", offset), 0)
        end
        local bitmap = ByteArray.new(bitmap_hex)
        if bit32.band(bitmap:get_index(0), 0x80) ~= 0 then
            if tvb:len() < offset + 32 then
                error("bit 1 announces a secondary bitmap that is not there", 0)
            end
            bitmap_hex = tvb:range(offset, 32):string()
            if not bitmap_hex:match("^%x+$") then
                error(string.format("secondary bitmap at offset %d is not 16 hex characters", offset + 16), 0)
            end
            bitmap = ByteArray.new(bitmap_hex)
        end
        subtree:add(host_f.bitmap, tvb:range(offset, #bitmap_hex), bitmap_hex)
        offset = offset + #bitmap_hex
        local summary = {}
        dissect_fields(tvb, offset, subtree, present_fields(bitmap), HOST_FIELDS, host_field_pf, summary)
        set_info(pinfo, info_text(mti, summary))
    end)
    if not ok then
        subtree:add_proto_expert_info(host_malformed, tostring(err))
        set_info(pinfo, "malformed: " .. tostring(err))
    end
    return tvb:len()
end

local function frame_length(tvb, pinfo, offset)
    return tvb:range(offset, LENGTH_PREFIX_LEN):uint() + LENGTH_PREFIX_LEN
end

function pos.dissector(tvb, pinfo, tree)
    dissect_tcp_pdus(tvb, tree, LENGTH_PREFIX_LEN, frame_length, dissect_pos_frame)
    return tvb:len()
end

function host.dissector(tvb, pinfo, tree)
    dissect_tcp_pdus(tvb, tree, LENGTH_PREFIX_LEN, frame_length, dissect_host_frame)
    return tvb:len()
end

local tcp_port = DissectorTable.get("tcp.port")
for _, port in ipairs(POS_PORTS) do
    tcp_port:add(port, pos)
end
for _, port in ipairs(HOST_PORTS) do
    tcp_port:add(port, host)
end
tcp_port:add_for_decode_as(pos)
tcp_port:add_for_decode_as(host)
