"""Simulated prepaid and plain meters on simulated RS485 buses, served with pymodbus.

``meter`` is the pure meter model, ``registers`` maps it onto a device profile, ``bus`` emulates
one shared line's wire time and faults, ``servers`` puts a bus on TCP, RTU over TCP or a socat pty,
``site``/``config``/``state``/``control``/``cli`` run a whole configured site.
"""
