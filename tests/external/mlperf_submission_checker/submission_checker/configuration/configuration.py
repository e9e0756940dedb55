# A stub: system_check.py uses Config only as a type annotation and reads one
# attribute of it, skip_meaningful_fields_emptiness_check (False for official
# submissions).


class Config:
    skip_meaningful_fields_emptiness_check = False
