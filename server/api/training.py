"""Quality: training courses, sessions and attendance; dispatch reads a courier's training record."""
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.imports import read_csv_upload
from schemas.training import (CSV_IMPORT_DESCRIPTION, AttendanceBatchIn, CourierTrainingOut, CourseIn, CourseOut,
                              CoursePage, CoursePatch, CourseQuery, CourseSavedOut, ImportOut, SessionIn, SessionOut, SessionPage,
                              SessionQuery)
from server.auth import current_actor, require
from server.requests import body_limit
from server.services import training
from server.services.training import READERS, RECORDERS

blp = Blueprint("training", __name__, url_prefix="/api/v1",
                description="Training: courses, sessions, attendance (quality, admin; dispatch reads)")


@blp.route("/quality/training/courses")
class Courses(MethodView):
    """Training courses."""

    @require(*RECORDERS)
    @blp.arguments(CourseIn)
    @blp.response(201, CourseSavedOut)
    def post(self, data):
        """Create a course: pre-job or periodic, with how long a pass is valid."""
        return training.create_course(actor=current_actor(), **data)

    @require(*READERS)
    @blp.arguments(CourseQuery, location="query")
    @blp.response(200, CoursePage)
    def get(self, query):
        """Every course, by code."""
        return training.list_courses(**query)


@blp.route("/quality/training/courses/<int:course_id>")
class CourseById(MethodView):
    """One course."""

    @require(*READERS)
    @blp.response(200, CourseOut)
    def get(self, course_id):
        """Read a course."""
        return training.get_course(course_id=course_id)

    @require(*RECORDERS)
    @blp.arguments(CoursePatch)
    @blp.response(200, CourseSavedOut)
    def patch(self, changes, course_id):
        """Rename, retire or reactivate a course, or change the validity of passes recorded from now on."""
        return training.update_course(actor=current_actor(), course_id=course_id, changes=changes)


@blp.route("/quality/training/sessions")
class Sessions(MethodView):
    """Sessions of the courses."""

    @require(*RECORDERS)
    @blp.arguments(SessionIn)
    @blp.response(201, SessionOut)
    def post(self, data):
        """Record (or plan) a session of a course."""
        return training.create_session(actor=current_actor(), **data)

    @require(*READERS)
    @blp.arguments(SessionQuery, location="query")
    @blp.response(200, SessionPage)
    def get(self, query):
        """Sessions newest first, with their attendance."""
        return training.list_sessions(**query)


@blp.route("/quality/training/sessions/import")
class SessionImport(MethodView):
    """Attendance from a spreadsheet."""

    @require(*RECORDERS)
    @body_limit("IMPORT_BODY_LIMIT")
    @blp.doc(requestBody={"required": True, "content": {
        "text/csv": {"schema": {"type": "string", "description": CSV_IMPORT_DESCRIPTION}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary", "description": CSV_IMPORT_DESCRIPTION}}}}}})
    @blp.response(200, ImportOut)
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    def post(self):
        """Import attendance and results from CSV; all or nothing, every bad cell named by row and column."""
        return training.import_attendance(actor=current_actor(), text=read_csv_upload(request))


@blp.route("/quality/training/sessions/<int:session_id>")
class SessionById(MethodView):
    """One session."""

    @require(*READERS)
    @blp.response(200, SessionOut)
    def get(self, session_id):
        """A session with its attendance."""
        return training.get_session(session_id=session_id)


@blp.route("/quality/training/sessions/<int:session_id>/attendance")
class SessionAttendance(MethodView):
    """Who attended a session, and who passed."""

    @require(*RECORDERS)
    @blp.arguments(AttendanceBatchIn)
    @blp.response(200, SessionOut)
    def post(self, data, session_id):
        """Record attendance and results at a held session; the same again changes nothing, a new result is a
        correction (audited)."""
        return training.record_attendance(actor=current_actor(), session_id=session_id, **data)


@blp.route("/dispatch/couriers/<courier_id>/training")
class CourierTraining(MethodView):
    """A courier's training record."""

    @require(*READERS)
    @blp.response(200, CourierTrainingOut)
    def get(self, courier_id):
        """Newest pass of each course, every attendance, what is due, and whether a shift may start now."""
        return training.courier_record(courier_id=courier_id)
