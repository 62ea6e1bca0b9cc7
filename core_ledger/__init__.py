"""Core account system: double-entry postings, holds, reversals, durable storage, ISO 8583 host link."""
