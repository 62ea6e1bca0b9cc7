"""Replaying recorded POS traffic and diffing the answers: hex dumps, pcap captures, acqsim traces."""
