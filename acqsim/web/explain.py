"""Plain-language explanations for the web view: each field's name and the meaning of its code, and each hop in
one line of English and one of Chinese (as the receipts are bilingual).

Names come from the specs (``wire/specs.py``) and meanings from ``wire/constants.py``; only the Chinese
wording and the HSM command names are written here. Values arrive already masked (the traces mask card
data), and nothing here unmasks them.
"""

from __future__ import annotations

from typing import Any, Final

from wire.constants import (
    ENTRY_CHIP_NO_PIN,
    ENTRY_CHIP_WITH_PIN,
    ENTRY_SWIPE_NO_PIN,
    ENTRY_SWIPE_WITH_PIN,
    RESPONSE_MEANINGS,
    ConditionCode,
    Mti,
    NetworkCode,
    ProcessingCode,
    ResponseCode,
    TxnType,
)
from wire.errors import MessageDecodeError
from wire.fields import Field60
from wire.specs import HOST_SPEC, POS_SPEC

#: Field 39 in Chinese, the wording a cardholder sees on a CUP terminal's screen or slip.
RESPONSE_MEANINGS_ZH: Final[dict[str, str]] = {
    ResponseCode.APPROVED: "交易成功",
    ResponseCode.INVALID_MERCHANT: "无效商户",
    ResponseCode.DO_NOT_HONOUR: "不予承兑",
    ResponseCode.INVALID_TRANSACTION: "无效交易",
    ResponseCode.INVALID_AMOUNT: "无效金额",
    ResponseCode.INVALID_CARD: "无效卡号",
    ResponseCode.ORIGINAL_MISMATCH: "原交易不符",
    ResponseCode.ORIGINAL_NOT_FOUND: "找不到原交易",
    ResponseCode.FORMAT_ERROR: "报文格式错误",
    ResponseCode.FUNCTION_NOT_SUPPORTED: "不支持的交易",
    ResponseCode.LOST_CARD: "挂失卡，请没收",
    ResponseCode.STOLEN_CARD: "被窃卡，请没收",
    ResponseCode.INSUFFICIENT_FUNDS: "余额不足",
    ResponseCode.EXPIRED_CARD: "过期卡",
    ResponseCode.INCORRECT_PIN: "密码错误",
    ResponseCode.NOT_PERMITTED_TO_TERMINAL: "终端不允许此交易",
    ResponseCode.EXCEEDS_AMOUNT_LIMIT: "超出金额限制",
    ResponseCode.RESTRICTED_CARD: "受限制的卡",
    ResponseCode.EXCEEDS_FREQUENCY_LIMIT: "超出次数限制",
    ResponseCode.PIN_TRIES_EXCEEDED: "密码错误次数超限",
    ResponseCode.BATCH_MISMATCH: "批次号不符，请重新签到",
    ResponseCode.DUPLICATE: "重复交易",
    ResponseCode.SYSTEM_MALFUNCTION: "系统故障",
    ResponseCode.CORE_TIMEOUT: "核心系统超时",
    ResponseCode.PIN_FORMAT_ERROR: "PIN格式错误",
    ResponseCode.MAC_FAILED: "MAC校验错，请重新签到",
}

#: payShield-style host commands acqsim's HSM answers (PROTOCOL.md §4), request code → (English, Chinese).
HSM_COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "NC": ("diagnostics", "诊断"),
    "A0": ("generate a working key (PIK or MAK) under the terminal's TMK", "生成工作密钥（PIK或MAK）"),
    "A6": ("import a key under a ZMK", "在ZMK下导入密钥"),
    "BU": ("compute a key check value", "计算密钥校验值"),
    "M6": ("generate the answer's MAC", "为应答计算MAC"),
    "M8": ("verify the request's MAC", "校验请求的MAC"),
    "CA": ("translate the PIN block", "转加密PIN块"),
    "CC": ("translate the PIN block between zones", "区域间转加密PIN块"),
    "DC": ("verify the PIN against the card's PVV", "用PVV校验持卡人密码"),
}
ENTRY_MODES: Final = {
    ENTRY_SWIPE_WITH_PIN: "magnetic stripe, PIN entered",
    ENTRY_SWIPE_NO_PIN: "magnetic stripe, no PIN",
    ENTRY_CHIP_WITH_PIN: "chip, PIN entered",
    ENTRY_CHIP_NO_PIN: "chip, no PIN",
}
CONDITION_CODES: Final[dict[str, str]] = {
    ConditionCode.NORMAL: "normal presentment",
    ConditionCode.PREAUTH: "pre-authorisation",
}
CURRENCIES: Final = {"156": "CNY"}


def _words(name: str) -> str:
    return name.lower().replace("_", " ")


MTI_NAMES: Final = {mti.value: _words(mti.name) for mti in Mti}
PROCESSING_NAMES: Final = {code.value: _words(code.name) for code in ProcessingCode}
TXN_TYPES: Final = {txn.value: _words(txn.name) for txn in TxnType}
NETWORK_CODES: Final = {code.value: _words(code.name) for code in NetworkCode}


def _meaning_60(value: str) -> str | None:
    try:
        parsed = Field60.parse(value)
    except (MessageDecodeError, ValueError):
        return None
    parts = [f"type {parsed.txn_type} {TXN_TYPES.get(parsed.txn_type, '')}".rstrip(), f"batch {parsed.batch}"]
    if parsed.network_code != NetworkCode.NONE:
        parts.append(f"network {parsed.network_code} {NETWORK_CODES.get(parsed.network_code, '')}".rstrip())
    return ", ".join(parts)


def meaning(number: str, value: str) -> str | None:
    """What a field's value means, where acqsim has a name for it."""
    if number == "3":
        return PROCESSING_NAMES.get(value)
    if number == "4" and value.isdigit():
        return f"{int(value) // 100:,}.{int(value) % 100:02d}"
    if number == "22":
        return ENTRY_MODES.get(value)
    if number == "25":
        return CONDITION_CODES.get(value)
    if number == "39":
        known = value in RESPONSE_MEANINGS_ZH
        return f"{RESPONSE_MEANINGS[ResponseCode(value)]} · {RESPONSE_MEANINGS_ZH[value]}" if known else None
    if number == "49":
        return CURRENCIES.get(value)
    if number == "60":
        return _meaning_60(value)
    return None


def field_views(link: str, message: dict[str, Any]) -> list[dict[str, str | None]]:
    """Each field of a traced (masked) message with its name and meaning, in field order."""
    spec = POS_SPEC if link == "pos" else HOST_SPEC
    views = []
    for number, value in sorted(message.get("fields", {}).items(), key=lambda item: int(item[0])):
        name = spec[number]["desc"] if number in spec else f"field {number}"
        views.append({"number": number, "name": name, "value": value, "meaning": meaning(number, value)})
    return views


def _response(message: dict[str, Any]) -> tuple[str, str, str]:
    code = str(message.get("fields", {}).get("39", ""))
    english = RESPONSE_MEANINGS[ResponseCode(code)] if code in RESPONSE_MEANINGS_ZH else "no response code"
    return code, english, RESPONSE_MEANINGS_ZH.get(code, "无应答码")


def _kind(message: dict[str, Any]) -> str:
    mti = str(message.get("mti", ""))
    processing = PROCESSING_NAMES.get(str(message.get("fields", {}).get("3", "")), "")
    return f"{mti} {MTI_NAMES.get(mti, '')}" + (f" ({processing})" if processing else "")


def _hsm_command(code: str) -> tuple[str, str]:
    if code in HSM_COMMANDS:
        return HSM_COMMANDS[code]
    request = code[0] + chr(ord(code[1]) - 1) if len(code) == 2 and code[1].isalpha() else code
    english, chinese = HSM_COMMANDS.get(request, (f"command {code}", f"指令{code}"))
    return english, chinese


def explain_hop(lanes: tuple[str, str], record: dict[str, Any]) -> tuple[str, str]:
    """One line of English and one of Chinese saying what happens on this hop."""
    message = record.get("message", {})
    tpdu = message.get("tpdu", {})
    if lanes == ("terminal", "nac"):
        fields = message.get("fields", {})
        pin = ("PIN block under its PIK", "PIN用PIK加密") if "52" in fields else ("no PIN", "无密码")
        mac = ("MAC under its MAK", "报文用MAK计算MAC") if "64" in fields else ("no MAC", "不带MAC")
        return (
            f"The terminal sends {_kind(message)}: {pin[0]}, {mac[0]}.",
            f"终端发出{message.get('mti', '')}请求：{pin[1]}，{mac[1]}。",
        )
    if lanes == ("nac", "frontend"):
        return (
            f"The NAC reads only the TPDU: routes by DST {tpdu.get('dst')} and rewrites SRC 0000 → "
            f"{tpdu.get('src')}, the address the answer will come back to.",
            f"NAC只读TPDU：按目的地址{tpdu.get('dst')}路由，把源地址0000改写为{tpdu.get('src')}，应答凭它找回终端。",
        )
    if lanes == ("frontend", "hsm"):
        english, chinese = _hsm_command(str(message.get("code", "")))
        return f"The front-end asks the HSM to {english}.", f"前置请加密机{chinese}。"
    if lanes == ("hsm", "frontend"):
        error = message.get("error") or ""
        english, chinese = _hsm_command(str(message.get("code", "")))
        outcome = "done" if error in ("", "00") else f"error {error}"
        return (
            f"The HSM answers ({english}): {record.get('note') or outcome}.",
            f"加密机应答（{chinese}）：{'成功' if error in ('', '00') else '错误码' + error}。",
        )
    if lanes == ("frontend", "ledger"):
        return (
            f"The front-end asks the core ledger to authorise and post: {_kind(message)} on the host link.",
            f"前置请核心账务系统授权并记账（主机链路{message.get('mti', '')}）。",
        )
    if lanes == ("ledger", "frontend"):
        code, english, chinese = _response(message)
        return f"The ledger answers 39={code}: {english}.", f"核心账务应答39={code}：{chinese}。"
    if lanes == ("frontend", "nac"):
        code, english, chinese = _response(message)
        return (
            f"The front-end answers 39={code} ({english}), with a MAC under the terminal's MAK.",
            f"前置返回应答39={code}（{chinese}），带MAC。",
        )
    if lanes == ("nac", "terminal"):
        code, english, chinese = _response(message)
        return (
            f"The NAC finds the terminal by the answer's DST and hands it back: 39={code} {english}.",
            f"NAC按应答的目的地址找回终端并交还：39={code} {chinese}。",
        )
    return f"{lanes[0]} → {lanes[1]}", f"{lanes[0]} → {lanes[1]}"
