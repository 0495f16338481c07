"""Flask-WTF forms of the console.

CSRF is checked once for every POST to the blueprint by ``auth.guard`` (Flask-WTF's
``validate_csrf`` on the ``csrf_token`` field every console form carries), so the forms themselves
do not repeat it; that keeps one token name whatever prefix a form uses.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField, TextAreaField
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
