"""Bybit v5: REST through pybit, WebSocket streams through websockets."""
