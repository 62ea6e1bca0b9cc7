"""Network access controller: routes POS-link frames by TPDU destination; never decodes the body."""
