"""acqsim's shared wire formats, sans-IO: nothing here touches a socket.

- ``framing``   2-byte big-endian length-prefixed frames (every acqsim link)
- ``tpdu``      the 5-byte TPDU of the POS link (routing addresses)
- ``header``    the 6-byte CUP message header of the POS link
- ``specs``     pyiso8583 specs: the CUP POS link and the ISO 8583:1987 ASCII host link
- ``posframe``  a whole POS frame: TPDU ‖ header ‖ body
- ``posmessage`` a POS request decoded once, at the edge: raw fields and parsed 60, 61, 48, 55, 59
- ``switchlink`` the scheme switch link: 46-byte switch header, ISO 8583 ASCII body, MAC in 128 (§10)
- ``codec``     encode/decode of both links' ISO 8583 bodies over pyiso8583; the MAC block
- ``fields``    sub-fields 60, 61, 48 (settlement totals, batch upload), 62 (sign-on keys), 54
- ``constants`` MTIs, processing codes, 60.1 / 60.3 codes and response codes, by name
- ``masking``   PAN and track masking (first 6 / last 4)
- ``dissect``   the field-by-field dissection behind ``acqsim decode`` and traces
- ``trace``     JSON-lines trace records
- ``paycrypto`` TDES, PIN blocks, MACs, KCVs, PVV
- ``ascii_tlv``  ASCII TLV (tag 2, length 3, value): field 59 and the TLV links
- ``field59``   field 59 for QR payments (A2, A3, A4; acqsim's QO, QR, QE), payment-code prefixes
- ``tlvlink``   one TLV message per frame, checked against a link spec (kinds, tags)
- ``walletlink`` the wallet link (front-end and wallet app ↔ wallet host)
- ``ecrlink``   the cash-register link (till ↔ terminal)
- ``errors``    the exception hierarchy every wire error belongs to

The contract these implement is PROTOCOL.md (``../shared/PROTOCOL.md`` beside the repository); ``docs/wire.md``
summarises acqsim's choices.
"""
