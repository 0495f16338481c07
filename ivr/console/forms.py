"""Flask-WTF forms of the console.

CSRF is checked once for every POST to the blueprint by ``auth.guard`` (Flask-WTF's
``validate_csrf`` on the ``csrf_token`` field every console form carries), so the forms themselves
do not repeat it; that keeps one token name whatever prefix a form uses.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

REASON_MAX = 500


class ConsoleForm(FlaskForm):
    class Meta:
        csrf = False  # checked for the whole blueprint in auth.guard


class LoginForm(ConsoleForm):
    username = StringField("Name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class LogoutForm(ConsoleForm):
    pass


class AcceptForm(ConsoleForm):
    override = BooleanField("Override the rule check")
    reason = TextAreaField("Reason (required for an override)", validators=[Optional(), Length(max=REASON_MAX)])


class CorrectForm(ConsoleForm):
    value = StringField("Correct value", validators=[DataRequired(message="Enter the correct value."),
                                                     Length(max=32)])
    reason = TextAreaField("Reason", validators=[DataRequired(message="A correction needs a reason."),
                                                 Length(max=REASON_MAX)])
    override = BooleanField("Override the rule check")


class RejectForm(ConsoleForm):
    reason = TextAreaField("Reason", validators=[DataRequired(message="A rejection needs a reason."),
                                                 Length(max=REASON_MAX)])


class LinkForm(ConsoleForm):
    region_id = SelectField("Region", coerce=int, validators=[DataRequired()])
    number = StringField("Account number", validators=[DataRequired(message="Enter the account number."),
                                                       Length(max=64)])
    add_phone = BooleanField("Add the caller's phone to the account")
    reason = TextAreaField("Note", validators=[Optional(), Length(max=REASON_MAX)])


class CloseForm(ConsoleForm):
    reason = TextAreaField("Reason", validators=[DataRequired(message="Closing needs a reason."),
                                                 Length(max=REASON_MAX)])


class RegionForm(ConsoleForm):
    """Every setting of a region, as text: ``readings_store.regions`` checks and applies them."""

    code = StringField("Code", validators=[Length(max=64)])
    name = StringField("Default name", validators=[Length(max=300)])
    name_ro = StringField("Name in Romanian", validators=[Length(max=300)])
    name_ru = StringField("Name in Russian", validators=[Length(max=300)])
    name_uk = StringField("Name in Ukrainian", validators=[Length(max=300)])
    name_en = StringField("Name in English", validators=[Length(max=300)])
    menu_key = StringField("Menu key (1-99, empty: not offered)", validators=[Length(max=8)])
    timezone = StringField("Time zone", validators=[Length(max=80)])
    work_days = StringField("Working days (ISO, 1=Monday)", validators=[Length(max=20)])
    work_start = StringField("Working hours from", validators=[Length(max=8)])
    work_end = StringField("Working hours to", validators=[Length(max=8)])
    operator_number = StringField("Operator number (E.164)", validators=[Length(max=40)])
    phone_prefixes = StringField("Caller ID prefixes (comma-separated)", validators=[Length(max=500)])
    window_all = StringField("Window for every utility", validators=[Length(max=16)])
    window_electricity = StringField("Window: electricity", validators=[Length(max=16)])
    window_cold_water = StringField("Window: cold water", validators=[Length(max=16)])
    window_hot_water = StringField("Window: hot water", validators=[Length(max=16)])
    window_gas = StringField("Window: gas", validators=[Length(max=16)])
    window_heat = StringField("Window: heating", validators=[Length(max=16)])
    ask_org_name = BooleanField("Ask a company's caller to say the organisation's name (recorded for operators)")


class RemoveRegionForm(ConsoleForm):
    pass


class ProfileForm(ConsoleForm):
    timezone = StringField("Time zone", validators=[Optional(), Length(max=64)],
                           description="An IANA zone such as Europe/Chisinau; empty: the region's on each page.")
    language = SelectField("Language of region names", choices=[SelectChoice("en", "English"), SelectChoice("ro", "Română"),
                                                                SelectChoice("ru", "Русский"),
                                                                SelectChoice("uk", "Українська")])


class PasswordForm(ConsoleForm):
    """An operator's own new password (checked in ``auth.change_own_password``)."""

    current = PasswordField("Current password", validators=[DataRequired(message="Enter your current password."),
                                                            Length(max=200)])
    new = PasswordField("New password", validators=[DataRequired(message="Enter the new password."),
                                                    Length(max=200)])
    repeated = PasswordField("New password again", validators=[DataRequired(message="Repeat the new password."),
                                                               Length(max=200)])
