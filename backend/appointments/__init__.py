"""Appointments (预约): slots, bookings, check-in codes, no-shows."""
